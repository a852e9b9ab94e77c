import Foundation
import MartletAWS
import Testing

/// AWS's published SigV4 examples and botocore-generated vectors (`Vectors/sigv4.json`), byte for byte.
@Suite("SigV4 vectors")
struct SigV4VectorTests {
    struct Vector: @unchecked Sendable, CustomTestStringConvertible {
        let id: String
        let inputs: [String: Any]
        let expected: [String: Any]
        var testDescription: String { id }
    }

    static let vectors: [Vector] = {
        let url = Bundle.module.url(forResource: "sigv4", withExtension: "json", subdirectory: "Vectors")!
        let root = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (root["vectors"] as! [[String: Any]]).map {
            Vector(id: $0["id"] as! String, inputs: $0["inputs"] as! [String: Any], expected: $0["expected"] as? [String: Any] ?? [:])
        }
    }()

    @Test("The vector file has every kind we check", arguments: [21])
    func coverage(count: Int) {
        #expect(Self.vectors.count == count)
        #expect(Self.vectors.allSatisfy { vector in
            ["sigv4-suite/", "s3-doc/", "boto/", "sqs/"].contains { vector.id.hasPrefix($0) }
        })
    }

    @Test("Each vector", arguments: vectors)
    func vector(_ vector: Vector) throws {
        let inputs = vector.inputs
        let expected = vector.expected
        switch vector.id {
        case let id where id.hasPrefix("sigv4-suite/") || ["boto/sqs-json-sendmessage", "boto/dynamodb-putitem", "boto/apigw-mgmt-post-to-connection"].contains(id):
            try headerVector(inputs, expected)
        case "s3-doc/presigned-get-test.txt":
            let signer = signer(inputs, service: "s3")
            let url = try #require(RequestURL(string: inputs["url"] as! String))
            let time = try #require(AWSTimestamp(amzDate: inputs["x_amz_date"] as! String))
            let presigned = try signer.presign(method: inputs["method"] as! String, url: url, expires: inputs["expires"] as! Int, at: time)
            #expect(presigned.description == expected["url"] as? String)
        case "s3-doc/post-policy-sigv4examplebucket":
            let signer = signer(inputs, service: "s3")
            let policy = Data((inputs["policy_json_crlf"] as! String).utf8).base64EncodedString()
            #expect(policy == expected["policy_base64"] as? String)
            let time = try #require(AWSTimestamp(amzDate: (inputs["date"] as! String) + "T000000Z"))
            #expect(signer.signature(stringToSign: policy, at: time) == expected["signature"] as? String)
            let key = SigningKeyCache.derive(secret: inputs["secret_key"] as! String, date: inputs["date"] as! String, region: "us-east-1", service: "s3")
            #expect(key.withUnsafeBytes { Hex.encode($0) } == expected["signing_key_hex"] as? String)
        case let id where id.hasPrefix("s3-doc/"):
            try s3HeaderVector(inputs, expected)
        case let id where id.hasPrefix("boto/presign-post"):
            try presignedPostVector(inputs, expected)
        case let id where id.hasPrefix("boto/presign-"):
            try presignedURLVector(inputs, expected)
        case "sqs/md5-of-message-body-and-attributes":
            #expect(SQSClient.md5(inputs["MessageBody"] as! String) == expected["MD5OfMessageBody"] as? String)
            #expect(SQSClient.md5("hello") == expected["MD5OfMessageBody_for_hello"] as? String)
            var attributes: [String: MessageAttributeValue] = [:]
            for (name, value) in inputs["MessageAttributes"] as! [String: [String: String]] {
                attributes[name] = MessageAttributeValue(dataType: value["DataType"]!, stringValue: value["StringValue"], binaryValue: value["BinaryValue_base64"])
            }
            #expect(SQSClient.md5(attributes) == expected["MD5OfMessageAttributes"] as? String)
            #expect(SQSClient.md5(["k": .string("v")]) == expected["MD5OfMessageAttributes_single_string_attr_k_v"] as? String)
        default:
            Issue.record("no check for vector \(vector.id)")
        }
    }

    private func signer(_ inputs: [String: Any], service: String) -> SigV4Signer {
        SigV4Signer(
            credentials: Credentials(accessKeyID: inputs["access_key"] as! String, secretAccessKey: inputs["secret_key"] as! String,
                                     sessionToken: inputs["session_token"] as? String),
            region: inputs["region"] as? String ?? "us-east-1", service: service
        )
    }

    /// Generic services: canonical request, string to sign and the Authorization header from `sign`.
    private func headerVector(_ inputs: [String: Any], _ expected: [String: Any]) throws {
        let signer = signer(inputs, service: inputs["service"] as! String)
        var url = try #require(RequestURL(string: inputs["url"] as! String))
        // The suite's request lines carry raw UTF-8 (`GET /ሴ`): that is the path as sent.
        let rawPath = (inputs["url"] as! String).split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).dropFirst(3).first
        if let rawPath, rawPath.unicodeScalars.contains(where: { !$0.isASCII }) { url.encodedPath = "/" + rawPath }
        var headers = (inputs["headers"] as! [String: String]).map { (name: $0.key, value: $0.value) }
        if !headers.contains(where: { $0.name.lowercased() == "host" }) { headers.append(("Host", url.hostHeader)) }
        let time = try #require(AWSTimestamp(amzDate: headers.first { $0.name.lowercased() == "x-amz-date" }!.value))
        let body = Array((inputs["body"] as! String).utf8)
        let canonical = signer.canonicalRequest(method: inputs["method"] as! String, url: url, headers: headers, payloadHash: SHA256Hex.of(body))
        #expect(canonical == expected["canonical_request"] as? String)
        #expect(signer.stringToSign(canonicalRequest: canonical, at: time) == expected["string_to_sign"] as? String)
        let unsignedInput = headers.filter { !["x-amz-date", "host"].contains($0.name.lowercased()) }
        let signed = signer.sign(method: inputs["method"] as! String, url: url, headers: unsignedInput, payload: .bytes(body), at: time)
        #expect(signed.first { $0.name == "Authorization" }?.value == expected["authorization"] as? String)
        #expect(signed.first { $0.name == "X-Amz-Date" }?.value == time.amzDate)
    }

    /// S3's published header examples: single encoding, the payload hash from `x-amz-content-sha256`.
    private func s3HeaderVector(_ inputs: [String: Any], _ expected: [String: Any]) throws {
        let signer = signer(inputs, service: "s3")
        var url = RequestURL(scheme: "https", host: inputs["host"] as! String, encodedPath: inputs["canonical_uri"] as! String)
        for pair in inputs["query"] as! [[String]] { url.appendQueryItem(name: pair[0], value: pair[1]) }
        let headers = (inputs["headers"] as! [String: String]).map { (name: $0.key, value: $0.value) }
        let payloadHash = headers.first { $0.name == "x-amz-content-sha256" }!.value
        #expect(payloadHash == SHA256Hex.of(Array((inputs["body"] as! String).utf8)))
        let time = try #require(AWSTimestamp(amzDate: headers.first { $0.name == "x-amz-date" }!.value))
        let canonical = signer.canonicalRequest(method: inputs["method"] as! String, url: url, headers: headers, payloadHash: payloadHash)
        #expect(canonical == expected["canonical_request"] as? String)
        #expect(signer.stringToSign(canonicalRequest: canonical, at: time) == expected["string_to_sign"] as? String)
        let signed = signer.sign(
            method: inputs["method"] as! String, url: url, headers: headers.filter { !["x-amz-date", "x-amz-content-sha256", "host"].contains($0.name) },
            payload: .sha256(payloadHash), at: time
        )
        let authorization = try #require(signed.first { $0.name == "Authorization" }?.value)
        #expect(authorization.hasSuffix("Signature=\(expected["signature"] as! String)"))
    }

    private func presigner(_ inputs: [String: Any]) -> S3Presigner {
        S3Presigner(
            credentials: Credentials(accessKeyID: inputs["access_key"] as! String, secretAccessKey: inputs["secret_key"] as! String,
                                     sessionToken: inputs["session_token"] as? String),
            region: inputs["region"] as? String ?? "us-east-1",
            endpoint: (inputs["endpoint_url"] as? String).flatMap(RequestURL.init(string:)),
            addressing: S3AddressingStyle(rawValue: inputs["addressing_style"] as? String ?? "auto") ?? .auto
        )
    }

    private func presignedURLVector(_ inputs: [String: Any], _ expected: [String: Any]) throws {
        let params = inputs["params"] as! [String: String]
        let method: S3Presigner.Method = inputs["operation"] as! String == "put_object" ? .put : .get
        let url = try presigner(inputs).presignedURL(
            method, bucket: params["Bucket"]!, key: params["Key"]!, expiresIn: inputs["expires_in"] as! Int,
            contentType: params["ContentType"], at: try #require(AWSTimestamp(amzDate: inputs["now_utc"] as! String))
        )
        #expect(url == expected["url"] as? String)
    }

    private func presignedPostVector(_ inputs: [String: Any], _ expected: [String: Any]) throws {
        // The recorded conditions include the two botocore appended: the bucket and the key.
        let recorded = inputs["conditions"] as! [Any]
        let conditions: [PostPolicyCondition] = recorded.dropLast(2).map { condition in
            if let array = condition as? [Any], array[0] as? String == "content-length-range" {
                return .contentLengthRange(min: array[1] as! Int, max: array[2] as! Int)
            }
            if let array = condition as? [Any] {
                return .startsWith(field: String((array[1] as! String).dropFirst()), prefix: array[2] as! String)
            }
            let object = condition as! [String: String]
            return .equals(field: object.keys.first!, value: object.values.first!)
        }
        let fields = (inputs["fields"] as? [String: String] ?? [:]).sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        let post = try presigner(inputs).presignedPost(
            bucket: inputs["bucket"] as! String, key: inputs["key"] as! String, fields: fields, conditions: conditions,
            expiresIn: inputs["expires_in"] as! Int, at: try #require(AWSTimestamp(iso8601: inputs["now_utc"] as! String))
        )
        #expect(post.url == expected["url"] as? String)
        let expectedFields = expected["fields"] as! [String: String]
        #expect(Dictionary(uniqueKeysWithValues: post.fields.map { ($0.name, $0.value) }) == expectedFields)
        let policy = String(decoding: Data(base64Encoded: post[field: "policy"]!)!, as: UTF8.self)
        #expect(policy == expected["policy_json_exact"] as? String)
    }
}
