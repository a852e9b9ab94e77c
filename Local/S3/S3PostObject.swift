import Crypto
import Foundation
import MartletAWS
import NIOCore
import NIOHTTP1
import _NIOFileSystem

/// Browser uploads: `POST /bucket` with a multipart form carrying a signed policy (SigV4 POST).
extension S3Service {
    /// Form fields (all but the file) may not exceed 20 KB together, as on S3.
    static let maxFormFieldBytes = 20 * 1024

    func postObject(bucket: String, request: HTTPServerRequest, body: HTTPRequestBodyStream, requestID: String) async throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        guard let boundary = MultipartFormParser.boundary(fromContentType: request.headers.first(name: "Content-Type") ?? "") else {
            throw S3Error.malformedPOST
        }
        var parser = MultipartFormParser(boundary: boundary)
        var fields: [(name: String, value: String)] = []
        var fieldBytes = 0
        var current: (name: String, value: ByteBuffer)?
        var pending: [MultipartFormParser.Event] = []
        var filePart: MultipartPartHeaders?

        // Phase 1: the fields before `file`.
        reading: while true {
            guard var chunk = try await body.next() else { break }
            var events = try parseForm { try parser.feed(&chunk) }
            while !events.isEmpty {
                let event = events.removeFirst()
                switch event {
                case .partHeaders(let headers):
                    if headers.name.lowercased() == "file" {
                        filePart = headers
                        pending = events
                        break reading
                    }
                    current = (headers.name, ByteBuffer())
                case .body(var bytes):
                    fieldBytes += bytes.readableBytes
                    guard fieldBytes <= Self.maxFormFieldBytes else {
                        throw S3Error(.badRequest, "MaxPostPreDataLengthExceededError", "Your POST request fields preceeding the upload file was too large.")
                    }
                    current?.value.writeBuffer(&bytes)
                case .partEnd:
                    if let field = current { fields.append((field.name, String(decoding: field.value.readableBytesView, as: UTF8.self))) }
                    current = nil
                }
            }
        }
        guard let filePart else {
            throw S3Error.invalidArgument("POST requires exactly one file upload per request.", name: "file", value: "0")
        }

        // The policy and its signature, before any byte of the file is stored.
        var lowercased: [String: String] = [:]
        for field in fields { lowercased[field.name.lowercased()] = field.value }
        guard var key = lowercased["key"] else {
            throw S3Error.invalidArgument("Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.", name: "key", value: "")
        }
        key = key.replacingOccurrences(of: "${filename}", with: filePart.filename ?? "")
        guard !key.isEmpty else { throw S3Error.invalidArgument("User key must have a length greater than 0.", name: "key", value: "") }
        guard key.utf8.count <= 1024 else { throw S3Error.keyTooLong(key.utf8.count) }
        let policy = try verifyPolicy(lowercased, bucket: bucket)
        var checked = lowercased
        checked["bucket"] = bucket
        checked["key"] = key
        if let violation = policy.checkFields(checked, now: Date()) { throw S3Error(violation) }

        // Phase 2: the file, streamed to a temporary file.
        let temporary = store.temporaryPath()
        var md5 = Insecure.MD5()
        var size: Int64 = 0
        do {
            try await FileSystem.shared.withFileHandle(forWritingAt: FilePath(temporary), options: .newFile(replaceExisting: true)) { file in
                var writer = file.bufferedWriter(capacity: .kibibytes(512))
                var fileDone = false
                func consume(_ events: [MultipartFormParser.Event]) async throws {
                    for event in events where !fileDone {
                        switch event {
                        case .body(let bytes):
                            size += Int64(bytes.readableBytes)
                            guard size <= Self.maxObjectSize else { throw S3Error.entityTooLarge(proposed: size, max: Self.maxObjectSize) }
                            bytes.withUnsafeReadableBytes { md5.update(bufferPointer: $0) }
                            try await writer.write(contentsOf: bytes)
                        case .partEnd: fileDone = true
                        case .partHeaders: break
                        }
                    }
                }
                try await consume(pending)
                while var chunk = try await body.next() {
                    // Fields after the file are ignored, as S3 ignores them; the rest of the form is still read.
                    let events = try parseForm { try parser.feed(&chunk) }
                    try await consume(events)
                }
                try parseForm { try parser.finish() }
                guard fileDone else { throw S3Error.incompleteBody }
                try await writer.flush()
            }
        } catch {
            unlink(temporary)
            if let error = error as? HTTPServerError, case .connectionClosed = error { throw S3Error.incompleteBody }
            throw error
        }
        if let violation = policy.checkContentLength(Int(size)) {
            unlink(temporary)
            throw S3Error(violation)
        }

        var metadata = S3ObjectMetadata()
        metadata.contentType = lowercased["content-type"] ?? filePart.contentType
        metadata.contentDisposition = lowercased["content-disposition"]
        metadata.cacheControl = lowercased["cache-control"]
        metadata.contentEncoding = lowercased["content-encoding"]
        metadata.expires = lowercased["expires"]
        for field in fields where field.name.lowercased().hasPrefix("x-amz-meta-") {
            metadata.user.append([String(field.name.lowercased().dropFirst("x-amz-meta-".count)), field.value])
        }
        let etag = Hex.encode(md5.finalize())
        let blob = try store.adopt(temporary: temporary)
        try store.putObject(bucket: bucket, S3ObjectRecord(key: key, blob: blob, size: size, etag: etag, modifiedMilliseconds: S3Store.nowMilliseconds(), metadata: metadata))

        let location = "http://\(request.headers.first(name: "Host") ?? "localhost")/\(bucket)/\(URIEncoding.encode(key, keepingSlashes: true))"
        let headers = [("ETag", "\"\(etag)\""), ("Location", location), ("x-amz-server-side-encryption", "AES256")]
        if let redirect = lowercased["success_action_redirect"] ?? lowercased["redirect"], !redirect.isEmpty {
            let separator = redirect.contains("?") ? "&" : "?"
            let target = "\(redirect)\(separator)bucket=\(URIEncoding.encode(bucket))&key=\(URIEncoding.encode(key))&etag=\(URIEncoding.encode("\"\(etag)\""))"
            return S3Response.empty(.seeOther, requestID: requestID, headers: headers.filter { $0.0 != "Location" } + [("Location", target)])
        }
        switch lowercased["success_action_status"] {
        case "200": return S3Response.empty(.ok, requestID: requestID, headers: headers)
        case "201":
            var xml = XMLWriter()
            xml.element("PostResponse") { xml in
                xml.element("Location", location)
                xml.element("Bucket", bucket)
                xml.element("Key", key)
                xml.element("ETag", "\"\(etag)\"")
            }
            var response = S3Response.xml(xml, requestID: requestID, status: .created)
            for (name, value) in headers { response.headers.add(name: name, value: value) }
            return response
        default: return S3Response.empty(.noContent, requestID: requestID, headers: headers)
        }
    }

    /// Checks the form's SigV4 fields: the credential is ours, and the policy is signed with its secret.
    private func verifyPolicy(_ fields: [String: String], bucket: String) throws -> S3PostPolicy {
        guard let encodedPolicy = fields["policy"] else {
            // No policy: an anonymous upload, which needs a public bucket; ours never are.
            throw S3Error.accessDenied
        }
        guard fields["x-amz-algorithm"] == SigV4Signer.algorithm else {
            if fields["awsaccesskeyid"] != nil {
                throw S3Error.invalidRequest("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
            }
            throw S3Error.invalidArgument("POST form fields x-amz-algorithm must be AWS4-HMAC-SHA256", name: "x-amz-algorithm", value: fields["x-amz-algorithm"] ?? "")
        }
        guard let credential = fields["x-amz-credential"], let signature = fields["x-amz-signature"], let date = fields["x-amz-date"] else {
            throw S3Error.invalidArgument("Bucket POST must contain the fields x-amz-credential, x-amz-date and x-amz-signature.")
        }
        let scope = credential.split(separator: "/", omittingEmptySubsequences: false)
        guard scope.count == 5, scope[4] == "aws4_request", AWSTimestamp(amzDate: date)?.scopeDate == String(scope[1]) else {
            throw S3Error.invalidArgument("Invalid credential or date in the POST form", name: "x-amz-credential", value: credential)
        }
        let accessKeyID = String(scope[0])
        guard let secret = verifier.credentials.secrets[accessKeyID] else {
            throw S3Error(.forbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", details: [("AWSAccessKeyId", accessKeyID)])
        }
        if let token = verifier.credentials.sessionToken, fields["x-amz-security-token"] != token {
            throw S3Error(.badRequest, "InvalidToken", "The provided token is malformed or otherwise invalid.")
        }
        let key = SigningKeyCache.derive(secret: secret, date: String(scope[1]), region: String(scope[2]), service: String(scope[3]))
        let expected = Hex.encode(HMACSHA256.authenticationCode(for: Array(encodedPolicy.utf8), key: key))
        guard SignatureVerifier.constantTimeEqual(expected, signature) else {
            throw S3Error(
                .forbidden, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                details: [("AWSAccessKeyId", accessKeyID), ("StringToSign", encodedPolicy), ("SignatureProvided", signature)]
            )
        }
        do {
            return try S3PostPolicy(base64Policy: encodedPolicy)
        } catch let violation as S3PostPolicyViolation {
            throw S3Error(violation)
        }
    }

    private func parseForm<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as MultipartFormError {
            throw S3Error(.badRequest, "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data. \(error.message)")
        }
    }
}

extension S3Error {
    static let malformedPOST = S3Error(.badRequest, "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.")

    init(_ violation: S3PostPolicyViolation) {
        self.init(HTTPResponseStatus(statusCode: violation.httpStatus), violation.code, violation.message, details: violation.extraElements)
    }
}
