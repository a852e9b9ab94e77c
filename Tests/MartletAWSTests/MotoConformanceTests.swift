import Foundation
import MartletAWS
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Every operation of the wire layer against moto in server mode, an independent AWS implementation.
/// `scripts/conformance` starts moto and runs this suite with `MARTLET_MOTO_ENDPOINT` set; moto
/// checks shapes and semantics, not signatures (those are proven against vectors and botocore).
@Suite("Conformance against moto", .enabled(if: ProcessInfo.processInfo.environment["MARTLET_MOTO_ENDPOINT"] != nil))
struct MotoConformanceTests {
    let endpoint = ProcessInfo.processInfo.environment["MARTLET_MOTO_ENDPOINT"] ?? ""
    var aws: AWSClient {
        AWSClient(
            configuration: AWSConfiguration(region: "us-east-1", endpointURL: endpoint),
            credentials: StaticCredentialProvider(Credentials(accessKeyID: "testing", secretAccessKey: "testing"))
        )
    }
    static let unique = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    private func fetch(_ url: String, method: String = "GET", body: Data? = nil, headers: [String: String] = [:]) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.httpBody = body
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, data)
    }

    @Test("S3: presigned PUT and GET, presigned POST, streamed put/get/head/delete")
    func s3() async throws {
        let s3 = S3Client(aws)
        let bucket = "martlet-\(Self.unique)"
        try await s3.createBucket(bucket)

        let key = "uploads/job 1/ü+input.bin"
        let payload = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0) })
        let putURL = try await s3.presignedURL(.put, bucket: bucket, key: key, expiresIn: 600, contentType: "application/octet-stream")
        let (putStatus, _) = try await fetch(putURL, method: "PUT", body: payload, headers: ["Content-Type": "application/octet-stream"])
        #expect(putStatus == 200)
        let (getStatus, downloaded) = try await fetch(try await s3.presignedURL(.get, bucket: bucket, key: key, expiresIn: 600))
        #expect(getStatus == 200)
        #expect(downloaded == payload)

        let post = try await s3.presignedPost(
            bucket: bucket, key: "forms/${filename}", fields: [("Content-Type", "text/plain")],
            conditions: [.contentLengthRange(min: 1, max: 1024), .startsWith(field: "Content-Type", prefix: "text/")], expiresIn: 600
        )
        let boundary = "martlet\(Self.unique)"
        var form = Data()
        for field in post.fields {
            form.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(field.name)\"\r\n\r\n\(field.value)\r\n".utf8))
        }
        form.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\nContent-Type: text/plain\r\n\r\nhello from a form\r\n--\(boundary)--\r\n".utf8))
        let (postStatus, postBody) = try await fetch(post.url, method: "POST", body: form, headers: ["Content-Type": "multipart/form-data; boundary=\(boundary)"])
        #expect((200..<300).contains(postStatus), "\(String(decoding: postBody, as: UTF8.self))")
        let posted = try await s3.getObject(bucket: bucket, key: "forms/note.txt").collect(upTo: 1024)
        #expect(String(buffer: posted) == "hello from a form")

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-moto-\(Self.unique)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("result.bin")
        let big = Data((0..<(2 * 1024 * 1024 + 3)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try big.write(to: source)
        let written = try await s3.putObject(
            bucket: bucket, key: "results/r.bin", body: .file(path: source.path, length: Int64(big.count)),
            contentType: "application/x-test", metadata: ["job-id": "42"]
        )
        #expect(written.eTag != nil)
        let head = try await s3.headObject(bucket: bucket, key: "results/r.bin")
        #expect(head.contentLength == Int64(big.count))
        #expect(head.contentType == "application/x-test")
        #expect(head.userMetadata["job-id"] == "42")
        let range = try await s3.getObject(bucket: bucket, key: "results/r.bin", range: "bytes=10-19")
        #expect(range.metadata.status == 206)
        #expect(Array(try await range.collect(upTo: 100).readableBytesView) == Array(big[10...19]))
        let target = folder.appendingPathComponent("copy.bin").path
        _ = try await s3.download(bucket: bucket, key: "results/r.bin", to: target)
        #expect(FileManager.default.contents(atPath: target) == big)
        try await s3.putObject(bucket: bucket, key: "small.json", body: .bytes(.init(string: #"{"ok":true}"#)), contentType: "application/json")
        #expect(String(buffer: try await s3.getObject(bucket: bucket, key: "small.json").collect(upTo: 100)) == #"{"ok":true}"#)

        try await s3.deleteObject(bucket: bucket, key: "results/r.bin")
        let gone = await #expect(throws: AWSServiceError.self) { _ = try await s3.headObject(bucket: bucket, key: "results/r.bin") }
        #expect(gone?.status == 404)
        let missing = await #expect(throws: AWSServiceError.self) { _ = try await s3.getObject(bucket: bucket, key: "never") }
        #expect(missing?.code == "NoSuchKey")
    }

    @Test("SQS: send, batch, long poll, visibility timeout, receive count, delete, attributes")
    func sqs() async throws {
        let sqs = SQSClient(aws)
        let name = "jobs-\(Self.unique)"
        let created = try await sqs.createQueue(named: name, attributes: ["VisibilityTimeout": "30"])
        let queue = try await sqs.queueURL(named: name)
        #expect(queue == created)

        // Long poll: a receive waiting on an empty queue gets the message sent while it waits.
        async let polled = sqs.receiveMessages(queueURL: queue, waitTime: 10)
        try await Task.sleep(for: .milliseconds(500))
        try await sqs.sendMessage(queueURL: queue, body: #"{"jobId":"1"}"#, attributes: ["jobType": .string("render"), "priority": .number("5")])
        let first = try await polled
        #expect(first.map(\.body) == [#"{"jobId":"1"}"#])
        #expect(first.first?.messageAttributes["jobType"] == .string("render"))
        #expect(first.first?.receiveCount == 1)

        // Hidden while in flight; visible again once its visibility is set to 0, and counted again.
        #expect(try await sqs.receiveMessages(queueURL: queue, waitTime: 0).isEmpty)
        try await sqs.changeMessageVisibility(queueURL: queue, receiptHandle: first[0].receiptHandle, visibilityTimeout: 0)
        let again = try await sqs.receiveMessages(queueURL: queue, waitTime: 2, visibilityTimeout: 1)
        #expect(again.first?.receiveCount == 2)
        // A visibility timeout that lapses returns the message to the queue.
        try await Task.sleep(for: .milliseconds(1500))
        let third = try await sqs.receiveMessages(queueURL: queue, waitTime: 2)
        #expect(third.first?.receiveCount == 3)
        try await sqs.deleteMessage(queueURL: queue, receiptHandle: third[0].receiptHandle)

        let batch = try await sqs.sendMessageBatch(queueURL: queue, entries: (1...3).map { SQSBatchEntry(id: "e\($0)", body: "job \($0)") })
        #expect(batch.successful.map(\.id).sorted() == ["e1", "e2", "e3"])
        #expect(batch.failed.isEmpty)
        var bodies: [String] = []
        while bodies.count < 3 {
            let messages = try await sqs.receiveMessages(queueURL: queue, maxMessages: 10, waitTime: 1)
            if messages.isEmpty { break }
            for message in messages {
                bodies.append(message.body)
                try await sqs.deleteMessage(queueURL: queue, receiptHandle: message.receiptHandle)
            }
        }
        #expect(bodies.sorted() == ["job 1", "job 2", "job 3"])
        let attributes = try await sqs.queueAttributes(queueURL: queue, names: ["VisibilityTimeout", "ApproximateNumberOfMessages"])
        #expect(attributes["VisibilityTimeout"] == "30")
        #expect(attributes["ApproximateNumberOfMessages"] == "0")

        let missing = await #expect(throws: AWSServiceError.self) { _ = try await sqs.queueURL(named: "no-such-queue-\(Self.unique)") }
        #expect(missing?.code.contains("NonExistentQueue") == true || missing?.code == "QueueDoesNotExist")
    }

    struct Job: Codable, Equatable {
        var pk: String
        var status: String
        var progress: Int
        var tags: [String]
        var owner: Owner?
        struct Owner: Codable, Equatable { var connection: String }
    }

    @Test("DynamoDB: conditional writes that must fail, updates with ReturnValues, query, Codable items")
    func dynamoDB() async throws {
        let table = DynamoDBClient(aws)
        let name = "jobs-\(Self.unique)"
        try await table.createTable(name, partitionKey: "pk", sortKey: "sk")
        let job = Job(pk: "job#1", status: "QUEUED", progress: 0, tags: ["gpu"], owner: .init(connection: "abc="))
        var item = try DynamoDBEncoder().encode(job)
        item["sk"] = "meta"
        try await table.putItem(table: name, item: item, condition: "attribute_not_exists(pk)")
        let duplicate = await #expect(throws: AWSServiceError.self) {
            try await table.putItem(table: name, item: item, condition: "attribute_not_exists(pk)")
        }
        #expect(duplicate?.isConditionalCheckFailed == true)

        let key: [String: AttributeValue] = ["pk": "job#1", "sk": "meta"]
        let stored = try #require(try await table.getItem(table: name, key: key, consistentRead: true))
        #expect(try DynamoDBDecoder().decode(Job.self, from: stored) == job)

        let updated = try await table.updateItem(
            table: name, key: key, update: "SET #s = :running, progress = :p", condition: "#s = :queued",
            attributes: .init(names: ["#s": "status"], values: [":running": "RUNNING", ":queued": "QUEUED", ":p": 40]), returnValues: .allNew
        )
        #expect(updated?["status"] == "RUNNING")
        #expect(updated?["progress"] == .n("40"))
        let stale = await #expect(throws: AWSServiceError.self) {
            try await table.updateItem(
                table: name, key: key, update: "SET #s = :running", condition: "#s = :queued",
                attributes: .init(names: ["#s": "status"], values: [":running": "RUNNING", ":queued": "QUEUED"])
            )
        }
        #expect(stale?.isConditionalCheckFailed == true)

        try await table.putItem(table: name, item: ["pk": "job#1", "sk": "event#1", "kind": "progress"])
        try await table.putItem(table: name, item: ["pk": "job#1", "sk": "event#2", "kind": "progress"])
        let page = try await table.query(
            table: name, keyCondition: "pk = :pk AND begins_with(sk, :e)", attributes: .init(values: [":pk": "job#1", ":e": "event#"]),
            scanIndexForward: false
        )
        #expect(page.items.compactMap { $0["sk"]?.string } == ["event#2", "event#1"])

        let old = try await table.deleteItem(table: name, key: key, condition: "attribute_exists(pk)", returnValues: .allOld)
        #expect(old?["status"] == "RUNNING")
        #expect(try await table.getItem(table: name, key: key) == nil)
        let absent = await #expect(throws: AWSServiceError.self) {
            try await table.deleteItem(table: name, key: key, condition: "attribute_exists(pk)")
        }
        #expect(absent?.isConditionalCheckFailed == true)
    }

    @Test("@connections: post, get and delete")
    func connections() async throws {
        let connections = try ConnectionsClient(aws, endpoint: endpoint)
        try await connections.post(Array(#"{"type":"progress","pct":42}"#.utf8), to: "L0SM9cOFvHcCIhw=")
        let info = try await connections.connection("L0SM9cOFvHcCIhw=")
        #expect(info.connectedAt != nil)
        try await connections.delete("L0SM9cOFvHcCIhw=")
    }
}
