import Foundation
import Logging
import MartletAWS
import MartletLocal
import MartletTestSupport
import NIOCore
import Synchronization
import Testing

/// The local AWS endpoint through our own AWS clients: authentication, SQS semantics, durability.
@Suite("Local AWS endpoint")
struct LocalEndpointTests {
    static let credentials = Credentials(accessKeyID: "test", secretAccessKey: "test")

    /// An endpoint on an ephemeral port with an in-memory database (or `path`), and a client for it.
    func withEndpoint<R: Sendable>(
        path: String? = nil, localCredentials: LocalCredentials = .default, _ body: (AWSClient, String) async throws -> R
    ) async throws -> R {
        let objects = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-s3-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: objects) }
        return try await withLocalEndpoint(
            database: try SQLiteDatabase(path: path), objectsFolder: path.map { $0 + ".s3" } ?? objects, credentials: localCredentials
        ) { url, _ in
            let aws = AWSClient(
                configuration: AWSConfiguration(region: "us-east-1", endpointURL: url, retry: RetryPolicy(maxAttempts: 1)),
                credentials: StaticCredentialProvider(Self.credentials)
            )
            return try await body(aws, url)
        }
    }

    @Test("Requests must be signed with a known key, a matching signature, a current date and the configured token")
    func authentication() async throws {
        try await withEndpoint(localCredentials: LocalCredentials(secrets: ["test": "test"], sessionToken: "tok")) { _, url in
            func call(_ credentials: Credentials, at time: AWSTimestamp = .now, sign: Bool = true) async throws -> HTTPServerResponse {
                var request = HTTPServerRequest(method: .POST, uri: "/", body: ByteBuffer(string: #"{"QueueNamePrefix":""}"#))
                let headers: [(name: String, value: String)] = [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "AmazonSQS.ListQueues")]
                let requestURL = RequestURL(string: url + "/")!
                let signed = sign
                    ? SigV4Signer(credentials: credentials, region: "us-east-1", service: "sqs")
                        .sign(method: "POST", url: requestURL, headers: headers, payload: .bytes(Array(#"{"QueueNamePrefix":""}"#.utf8)), at: time)
                    : headers + [("Host", requestURL.hostHeader)]
                for (name, value) in signed { request.headers.add(name: name, value: value) }
                let endpoint = try LocalEndpoint(
                    database: try SQLiteDatabase(path: nil), objectsFolder: NSTemporaryDirectory() + "martlet-s3-auth",
                    credentials: LocalCredentials(secrets: ["test": "test"], sessionToken: "tok"), logger: Logger(label: "test")
                )
                return await endpoint.answer(request)
            }
            let good = try await call(Credentials(accessKeyID: "test", secretAccessKey: "test", sessionToken: "tok"))
            #expect(good.status == .ok)
            let wrongSecret = try await call(Credentials(accessKeyID: "test", secretAccessKey: "nope", sessionToken: "tok"))
            #expect(wrongSecret.status == .forbidden)
            #expect(wrongSecret.headers.first(name: "x-amzn-query-error") == "SignatureDoesNotMatch;Sender")
            let unknownKey = try await call(Credentials(accessKeyID: "AKIDOTHER", secretAccessKey: "test", sessionToken: "tok"))
            #expect(unknownKey.headers.first(name: "x-amzn-query-error") == "InvalidClientTokenId;Sender")
            let noToken = try await call(Credentials(accessKeyID: "test", secretAccessKey: "test"))
            #expect(noToken.headers.first(name: "x-amzn-query-error") == "InvalidClientTokenId;Sender")
            let stale = try await call(Credentials(accessKeyID: "test", secretAccessKey: "test", sessionToken: "tok"), at: .now.adding(seconds: -20 * 60))
            #expect(stale.status == .forbidden)
            #expect(stale.body.text.contains("Signature expired"))
            let unsigned = try await call(Credentials(accessKeyID: "test", secretAccessKey: "test"), sign: false)
            #expect(unsigned.body.text.contains("MissingAuthenticationToken"))
        }
    }

    @Test("SQS through our client: attributes, batch, visibility redelivery, long poll woken by a send, dead-letter redrive")
    func sqsRoundTrip() async throws {
        try await withEndpoint { aws, _ in
            let sqs = SQSClient(aws)
            let dlq = try await sqs.createQueue(named: "jobs-dlq")
            let queue = try await sqs.createQueue(named: "jobs", attributes: [
                "VisibilityTimeout": "1", "RedrivePolicy": #"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:jobs-dlq","maxReceiveCount":2}"#,
            ])
            #expect(try await sqs.queueURL(named: "jobs") == queue)
            try await sqs.sendMessage(queueURL: queue, body: #"{"jobId":"1"}"#, attributes: ["jobType": .string("render"), "blob": .binary([0, 1, 2])])
            let first = try await sqs.receiveMessages(queueURL: queue, waitTime: 1)
            #expect(first.first?.messageAttributes["jobType"] == .string("render"))
            #expect(first.first?.receiveCount == 1)
            // Hidden for its visibility timeout, then back with a higher count.
            #expect(try await sqs.receiveMessages(queueURL: queue, waitTime: 0).isEmpty)
            let second = try await sqs.receiveMessages(queueURL: queue, waitTime: 5)
            #expect(second.first?.receiveCount == 2)
            // Over maxReceiveCount: the next receive moves it to the dead-letter queue.
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await sqs.receiveMessages(queueURL: queue, waitTime: 0).isEmpty)
            let dead = try await sqs.receiveMessages(queueURL: dlq, waitTime: 1)
            #expect(dead.map(\.body) == [#"{"jobId":"1"}"#])

            async let polled = sqs.receiveMessages(queueURL: queue, waitTime: 20)
            try await Task.sleep(for: .milliseconds(300))
            let batch = try await sqs.sendMessageBatch(queueURL: queue, entries: [SQSBatchEntry(id: "a", body: "one"), SQSBatchEntry(id: "b", body: "two")])
            #expect(batch.successful.count == 2)
            let woken = try await polled
            #expect(woken.count == 1)
            try await sqs.deleteMessage(queueURL: queue, receiptHandle: woken[0].receiptHandle)
            let rest = try await sqs.receiveMessages(queueURL: queue, maxMessages: 10, waitTime: 1)
            #expect(Set((woken + rest).map(\.body)) == ["one", "two"])
            try await sqs.changeMessageVisibility(queueURL: queue, receiptHandle: rest[0].receiptHandle, visibilityTimeout: 0)
            #expect(try await sqs.receiveMessages(queueURL: queue, waitTime: 1).first?.body == rest[0].body)

            let missing = await #expect(throws: AWSServiceError.self) { _ = try await sqs.queueURL(named: "missing") }
            #expect(missing?.code == "QueueDoesNotExist")
            let attributes = try await sqs.queueAttributes(queueURL: queue)
            #expect(attributes["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:jobs")
        }
    }

    @Test("Bad input gets AWS's error and the endpoint keeps serving")
    func badInput() async throws {
        try await withEndpoint { aws, _ in
            let sqs = SQSClient(aws)
            let queue = try await sqs.createQueue(named: "q")
            // Refused by the server itself (our client would refuse these before sending).
            func raw(_ target: String, _ body: String) async throws -> AWSServiceError? {
                do {
                    _ = try await aws.callJSON(.sqs, target: target, body: body)
                    return nil
                } catch let error as AWSServiceError {
                    return error
                }
            }
            #expect(try await raw("AmazonSQS.SendMessage", "{not json")?.code == "SerializationException")
            #expect(try await raw("AmazonSQS.NoSuchOperation", "{}")?.code == "UnknownOperationException")
            #expect(try await raw("AmazonSQS.SendMessage", #"{"QueueUrl":"\#(queue)","MessageBody":"\#(String(repeating: "x", count: 1_048_577))"}"#)?.code == "InvalidParameterValueException")
            #expect(try await raw("AmazonSQS.SendMessage", #"{"QueueUrl":"\#(queue)","MessageBody":"bad \u0001"}"#)?.code == "InvalidMessageContents")
            #expect(try await raw("AmazonSQS.ReceiveMessage", #"{"QueueUrl":"\#(queue)","WaitTimeSeconds":21}"#)?.code == "InvalidParameterValueException")
            #expect(try await raw("AmazonSQS.SendMessageBatch", #"{"QueueUrl":"\#(queue)","Entries":[{"Id":"a","MessageBody":"x"},{"Id":"a","MessageBody":"y"}]}"#)?.code == "BatchEntryIdsNotDistinct")
            #expect(try await raw("AmazonSQS.DeleteMessage", #"{"QueueUrl":"\#(queue)","ReceiptHandle":"garbage"}"#)?.code == "ReceiptHandleIsInvalid")
            let huge = try await raw("AmazonSQS.SendMessage", #"{"QueueUrl":"\#(queue)","MessageBody":"\#(String(repeating: "x", count: LocalEndpoint.maxBodySize))"}"#)
            #expect(huge?.status == 413)
            let table = DynamoDBClient(aws)
            try await table.createTable("jobs", partitionKey: "pk")
            let syntax = await #expect(throws: AWSServiceError.self) {
                try await table.putItem(table: "jobs", item: ["pk": "1"], condition: "attribute_not_exists(pk")
            }
            #expect(syntax?.code == "ValidationException")
            #expect(syntax?.message.contains("Syntax error") == true)
            let reserved = await #expect(throws: AWSServiceError.self) {
                try await table.updateItem(table: "jobs", key: ["pk": "1"], update: "SET status = :s", attributes: .init(values: [":s": "x"]))
            }
            #expect(reserved?.message.contains("reserved keyword") == true)
            let noTable = await #expect(throws: AWSServiceError.self) { _ = try await table.getItem(table: "nope", key: ["pk": "1"]) }
            #expect(noTable?.code == "ResourceNotFoundException")
            // Still serving.
            try await sqs.sendMessage(queueURL: queue, body: "fine")
            #expect(try await sqs.receiveMessages(queueURL: queue, waitTime: 1).first?.body == "fine")
        }
    }
}
