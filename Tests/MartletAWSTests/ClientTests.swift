import Foundation
import MartletAWS
import MartletLocal
import MartletTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The clients against scripted servers on loopback: signing on the wire, retries, typed errors,
/// arguments refused before sending, streamed bodies.
@Suite("AWS clients against scripted servers")
struct ClientTests {
    static let credentials = Credentials(accessKeyID: "AKIDTEST", secretAccessKey: "secret", sessionToken: "token/+=")

    func client(_ endpoint: String, attempts: Int = 3) -> AWSClient {
        AWSClient(
            configuration: AWSConfiguration(region: "us-east-1", endpointURL: endpoint, retry: RetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(1))),
            credentials: StaticCredentialProvider(Self.credentials)
        )
    }

    static func json(_ status: HTTPResponseStatus, _ body: String, headers: HTTPHeaders = [:]) -> HTTPServerResponse {
        var headers = headers
        headers.add(name: "x-amzn-RequestId", value: "req-\(status.code)")
        return .json(status, body, headers: headers)
    }

    @Test("A call is signed, targeted and sent to the configured endpoint")
    func signedRequest() async throws {
        let log = RequestLog()
        let url = try await withHTTPServer({ request in
            log.record(request)
            return Self.json(.ok, #"{"QueueUrl":"http://localhost/000000000000/jobs"}"#)
        }) { endpoint in
            try await SQSClient(client(endpoint)).queueURL(named: "jobs")
        }
        #expect(url == "http://localhost/000000000000/jobs")
        let request = try #require(log.requests.first)
        #expect(request.headers.first(name: "X-Amz-Target") == "AmazonSQS.GetQueueUrl")
        #expect(request.headers.first(name: "Content-Type") == "application/x-amz-json-1.0")
        #expect(request.headers.first(name: "X-Amz-Security-Token") == "token/+=")
        let authorization = try #require(request.headers.first(name: "Authorization"))
        #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDTEST/"))
        #expect(authorization.contains("/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target;x-amzn-query-mode, Signature="))
        // The signature covers exactly what arrived.
        let signer = SigV4Signer(credentials: Self.credentials, region: "us-east-1", service: "sqs")
        let time = try #require(AWSTimestamp(amzDate: request.headers.first(name: "X-Amz-Date")!))
        let signedNames = Set(authorization.split(separator: "SignedHeaders=")[1].prefix { $0 != "," }.split(separator: ";").map(String.init))
        let headers = request.headers.filter { signedNames.contains($0.name.lowercased()) }.map { (name: $0.name, value: $0.value) }
        let canonical = signer.canonicalRequest(
            method: "POST", url: RequestURL(string: "http://\(request.headers.first(name: "Host")!)/")!, headers: headers,
            payloadHash: SHA256Hex.of(Array(request.body.readableBytesView))
        )
        #expect(authorization.hasSuffix("Signature=" + signer.signature(canonicalRequest: canonical, at: time)), "\(request.headers)\n\(canonical)")
    }

    @Test("Throttling and 5xx are retried with backoff; client errors are not")
    func retries() async throws {
        let log = RequestLog()
        let url = try await withHTTPServer({ request in
            log.record(request)
            switch log.count {
            case 1: return Self.json(.serviceUnavailable, #"{"__type":"com.amazonaws.sqs#ServiceUnavailable","message":"try again"}"#)
            case 2: return Self.json(.badRequest, #"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"slow down"}"#)
            default: return Self.json(.ok, #"{"QueueUrl":"q"}"#)
            }
        }) { endpoint in
            try await SQSClient(client(endpoint)).queueURL(named: "jobs")
        }
        #expect(url == "q")
        #expect(log.count == 3)

        let refused = RequestLog()
        let error = await #expect(throws: AWSServiceError.self) {
            try await withHTTPServer({ request in
                refused.record(request)
                return Self.json(
                    .badRequest, #"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#,
                    headers: ["x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"]
                )
            }) { endpoint in
                try await SQSClient(client(endpoint)).queueURL(named: "missing")
            }
        }
        #expect(refused.count == 1)
        #expect(error?.code == "QueueDoesNotExist")
        #expect(error?.message == "The specified queue does not exist.")
        #expect(error?.requestID == "req-400")
        #expect(error?.status == 400)

        let exhausted = RequestLog()
        await #expect(throws: AWSServiceError.self) {
            try await withHTTPServer({ request in
                exhausted.record(request)
                return Self.json(.internalServerError, #"{"__type":"InternalFailure","message":"boom"}"#)
            }) { endpoint in
                try await SQSClient(client(endpoint, attempts: 2)).queueURL(named: "jobs")
            }
        }
        #expect(exhausted.count == 2)
    }

    @Test("Invalid arguments throw before any request is sent")
    func invalidArguments() async throws {
        let log = RequestLog()
        try await withHTTPServer({ request in
            log.record(request)
            return Self.json(.ok, "{}")
        }) { endpoint in
            let aws = client(endpoint)
            let s3 = S3Client(aws)
            func expectInvalid(_ operation: () async throws -> Void) async {
                await #expect(throws: AWSClientError.self) { try await operation() }
            }
            await expectInvalid { _ = try await s3.presignedURL(.get, bucket: "jobs", key: "a", expiresIn: 604_801) }
            await expectInvalid { _ = try await s3.presignedURL(.get, bucket: "jobs", key: "a", expiresIn: 0) }
            await expectInvalid { _ = try await s3.presignedURL(.get, bucket: "jobs", key: "") }
            await expectInvalid { _ = try await s3.presignedURL(.get, bucket: "Bad_Bucket", key: "a") }
            await expectInvalid { _ = try await s3.presignedPost(bucket: "jobs", key: "a", conditions: [.contentLengthRange(min: 10, max: 1)]) }
            await expectInvalid { try await s3.putObject(bucket: "jobs", key: "", body: .empty) }
            let sqs = SQSClient(aws)
            await expectInvalid { try await sqs.sendMessage(queueURL: endpoint, body: String(repeating: "x", count: SQSClient.maxMessageSize + 1)) }
            await expectInvalid { try await sqs.sendMessage(queueURL: endpoint, body: "") }
            await expectInvalid { try await sqs.sendMessage(queueURL: endpoint, body: "bad \u{1}") }
            await expectInvalid { try await sqs.sendMessage(queueURL: endpoint, body: "x", delaySeconds: 901) }
            await expectInvalid { _ = try await sqs.receiveMessages(queueURL: endpoint, waitTime: 21) }
            await expectInvalid { _ = try await sqs.receiveMessages(queueURL: endpoint, maxMessages: 11) }
            await expectInvalid { try await sqs.changeMessageVisibility(queueURL: endpoint, receiptHandle: "r", visibilityTimeout: 43_201) }
            await expectInvalid { _ = try await sqs.sendMessageBatch(queueURL: endpoint, entries: (0..<11).map { SQSBatchEntry(id: "e\($0)", body: "x") }) }
            await expectInvalid { _ = try await sqs.sendMessageBatch(queueURL: endpoint, entries: [SQSBatchEntry(id: "a", body: "x"), SQSBatchEntry(id: "a", body: "y")]) }
            let table = DynamoDBClient(aws)
            await expectInvalid { try await table.putItem(table: "jobs", item: [:]) }
            await expectInvalid { try await table.updateItem(table: "jobs", key: ["pk": "1"], update: "SET a = :a", attributes: .init(values: ["a": "x"])) }
            await expectInvalid { _ = try await table.getItem(table: "j", key: ["pk": "1"]) }
            let connections = try ConnectionsClient(aws, endpoint: endpoint + "/dev")
            await expectInvalid { try await connections.post(Array(repeating: 0, count: ConnectionsClient.maxPostSize + 1), to: "abc=") }
            await expectInvalid { try await connections.post([1], to: "") }
        }
        #expect(log.count == 0)
    }

    @Test("@connections: 410 is ConnectionGoneError; post, get and delete reach the stage's path")
    func connections() async throws {
        let log = RequestLog()
        try await withHTTPServer({ request in
            log.record(request)
            if request.path.hasSuffix("gone%3D") {
                return Self.json(.gone, #"{"message":"Gone"}"#, headers: ["x-amzn-ErrorType": "GoneException"])
            }
            switch request.method {
            case .GET:
                return Self.json(.ok, #"{"connectedAt":"2025-01-15T12:00:00.000Z","identity":{"sourceIp":"203.0.113.9","userAgent":"test"},"lastActiveAt":"2025-01-15T12:01:00.000Z"}"#)
            case .DELETE: return HTTPServerResponse(status: .noContent)
            default: return HTTPServerResponse(status: .ok)
            }
        }) { endpoint in
            let connections = try ConnectionsClient(client(endpoint), endpoint: endpoint + "/dev")
            try await connections.post(Array(#"{"progress":42}"#.utf8), to: "live=")
            let info = try await connections.connection("live=")
            #expect(info.identity?.sourceIp == "203.0.113.9")
            try await connections.delete("live=")
            let gone = await #expect(throws: ConnectionGoneError.self) { try await connections.post([1], to: "gone=") }
            #expect(gone?.connectionID == "gone=")
        }
        #expect(log.requests.map { "\($0.method) \($0.path)" } == [
            "POST /dev/@connections/live%3D", "GET /dev/@connections/live%3D", "DELETE /dev/@connections/live%3D", "POST /dev/@connections/gone%3D",
        ])
        #expect(log.requests[0].body.text == #"{"progress":42}"#)
        #expect(log.requests[0].headers.first(name: "Authorization")?.contains("/us-east-1/execute-api/aws4_request") == true)
    }

    @Test("S3 errors are read from XML; HEAD of a missing key is NotFound")
    func s3Errors() async throws {
        try await withHTTPServer({ request in
            var headers: HTTPHeaders = ["x-amz-request-id": "s3req", "Content-Type": "application/xml"]
            if request.method == .HEAD { return HTTPServerResponse(status: .notFound, headers: headers) }
            headers.add(name: "Content-Type", value: "application/xml")
            return HTTPServerResponse(status: .notFound, headers: headers, body: ByteBuffer(string:
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a &amp; b</Key><RequestId>s3req</RequestId></Error>"))
        }) { endpoint in
            let s3 = S3Client(client(endpoint))
            let missing = await #expect(throws: AWSServiceError.self) { _ = try await s3.getObject(bucket: "jobs", key: "a & b") }
            #expect(missing?.code == "NoSuchKey")
            #expect(missing?.message == "The specified key does not exist.")
            #expect(missing?.requestID == "s3req")
            let head = await #expect(throws: AWSServiceError.self) { _ = try await s3.headObject(bucket: "jobs", key: "a") }
            #expect(head?.code == "NotFound")
            #expect(head?.status == 404)
        }
    }

    @Test("Files upload in chunks with UNSIGNED-PAYLOAD and download to a file, path-style on a custom endpoint")
    func streamedTransfers() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-s3-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("input.bin")
        let bytes = (0..<(3 * 1024 * 1024 + 17)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: source)
        let stored = RequestLog()
        try await withHTTPServer({ request in
            switch request.method {
            case .PUT:
                stored.record(request)
                return HTTPServerResponse(status: .ok, headers: ["ETag": "\"etag\""])
            default:
                let body = stored.requests.last?.body ?? ByteBuffer()
                return HTTPServerResponse(status: .ok, headers: ["Content-Type": "application/octet-stream", "x-amz-meta-job": "1"], body: body)
            }
        }) { endpoint in
            let s3 = S3Client(client(endpoint))
            let result = try await s3.putObject(
                bucket: "jobs", key: "results/a b+c/ü.bin", body: .file(path: source.path, length: Int64(bytes.count)),
                contentType: "application/octet-stream", metadata: ["job": "1"]
            )
            #expect(result.eTag == "\"etag\"")
            let target = folder.appendingPathComponent("output.bin").path
            let metadata = try await s3.download(bucket: "jobs", key: "results/a b+c/ü.bin", to: target)
            #expect(metadata.userMetadata["job"] == "1")
            #expect(FileManager.default.contents(atPath: target) == Data(bytes))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".part-") }
            #expect(leftovers.isEmpty)
        }
        let put = try #require(stored.requests.first)
        #expect(put.path == "/jobs/results/a%20b%2Bc/%C3%BC.bin")
        #expect(put.headers.first(name: "x-amz-content-sha256") == "UNSIGNED-PAYLOAD")
        #expect(put.headers.first(name: "x-amz-meta-job") == "1")
        #expect(put.body.readableBytes == bytes.count)
    }

    @Test("SQS: message attributes, MD5 checks and receive counts")
    func sqsMessages() async throws {
        let body = #"{"jobId":"123"}"#
        try await withHTTPServer({ request in
            switch request.headers.first(name: "X-Amz-Target") {
            case "AmazonSQS.SendMessage":
                return Self.json(.ok, #"{"MessageId":"m1","MD5OfMessageBody":"6d92de945214620cb7a75e247165e9e4"}"#)
            default:
                return Self.json(.ok, #"{"Messages":[{"MessageId":"m1","ReceiptHandle":"r1","MD5OfBody":"0000","Body":"{\"jobId\":\"123\"}"}]}"#)
            }
        }) { endpoint in
            let sqs = SQSClient(client(endpoint))
            let messageID = try await sqs.sendMessage(queueURL: endpoint + "/000000000000/jobs", body: body, attributes: ["jobType": .string("render")])
            #expect(messageID == "m1")
            // A corrupted body (wrong MD5) is refused rather than handed to the worker.
            await #expect(throws: AWSClientError.self) { _ = try await sqs.receiveMessages(queueURL: endpoint + "/000000000000/jobs", waitTime: 0) }
        }
    }
}

