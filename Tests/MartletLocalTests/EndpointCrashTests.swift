import Foundation
import MartletAWS
import MartletTestSupport
import Synchronization
import Testing

/// `martlet endpoint` killed with SIGKILL in the middle of a stream of writes loses no acknowledged
/// write and duplicates or corrupts none.
@Suite("Local endpoint durability")
struct EndpointCrashTests {
    /// Starts `martlet endpoint` on the data folder; returns the process and its URL.
    func start(data: String) throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: builtProduct("martlet"))
        process.arguments = ["endpoint", "--port", "0", "--data", data]
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        guard let url = announcedURL(stderr) else { throw CancellationError() }
        return (process, url)
    }

    func client(_ url: String) -> AWSClient {
        AWSClient(
            configuration: AWSConfiguration(region: "us-east-1", endpointURL: url, retry: RetryPolicy(maxAttempts: 1)),
            credentials: StaticCredentialProvider(Credentials(accessKeyID: "test", secretAccessKey: "test"))
        )
    }

    @Test("SIGKILL during a stream of sends and writes: every acknowledged message and item is there once, intact, after a restart")
    func survivesKill() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-crash-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (first, url) = try start(data: folder)
        let sqs = SQSClient(client(url))
        let table = DynamoDBClient(client(url))
        let queue = try await sqs.createQueue(named: "jobs")
        try await table.createTable("jobs", partitionKey: "pk")
        let acknowledged = LineRecorder()
        let written = LineRecorder()
        let pid = first.processIdentifier
        let payload = String(repeating: "0123456789", count: 20)
        // Send and write until the process dies; kill it once 300 operations were acknowledged.
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var index = 0
                    while true {
                        let body = "\(worker)-\(index)-\(payload)"
                        do {
                            if worker % 2 == 0 {
                                try await sqs.sendMessage(queueURL: queue, body: body)
                                acknowledged.sink(body)
                            } else {
                                try await table.putItem(table: "jobs", item: ["pk": .s(body), "n": .n(String(index))], condition: "attribute_not_exists(pk)")
                                written.sink(body)
                            }
                        } catch {
                            return
                        }
                        if acknowledged.lines.count + written.lines.count >= 300 { kill(pid, SIGKILL) }
                        index += 1
                    }
                }
            }
        }
        first.waitUntilExit()
        #expect(first.terminationReason == .uncaughtSignal)

        let (second, secondURL) = try start(data: folder)
        defer { second.terminate(); second.waitUntilExit() }
        let restarted = SQSClient(client(secondURL))
        var received: [String] = []
        while true {
            let batch = try await restarted.receiveMessages(queueURL: queue, maxMessages: 10, waitTime: 0, visibilityTimeout: 600)
            if batch.isEmpty { break }
            received += batch.map(\.body)
        }
        let sent = acknowledged.lines
        #expect(sent.count > 50)
        #expect(Set(received).count == received.count, "no duplicates")
        #expect(Set(sent).isSubset(of: Set(received)), "every acknowledged message survived")
        // Only the sends in flight at the kill (one per sending worker) may have landed unacknowledged.
        #expect(received.count <= sent.count + 2)
        #expect(received.allSatisfy { $0.hasSuffix(payload) }, "bodies intact")

        let restartedTable = DynamoDBClient(client(secondURL))
        var items: [[String: AttributeValue]] = []
        var start: [String: AttributeValue]?
        repeat {
            let page = try await restartedTable.aws.callJSON(
                .dynamoDB, target: "DynamoDB_20120810.Scan",
                body: start.map { #"{"TableName":"jobs","ExclusiveStartKey":\#(String(decoding: try! JSONEncoder().encode($0), as: UTF8.self))}"# } ?? #"{"TableName":"jobs"}"#
            )
            struct Page: Decodable { var Items: [[String: AttributeValue]]; var LastEvaluatedKey: [String: AttributeValue]? }
            let decoded = try JSONDecoder().decode(Page.self, from: Data(page.readableBytesView))
            items += decoded.Items
            start = decoded.LastEvaluatedKey
        } while start != nil
        let keys = items.compactMap { $0["pk"]?.string }
        #expect(written.lines.count > 50)
        #expect(Set(keys).count == keys.count, "no duplicate items")
        #expect(Set(written.lines).isSubset(of: Set(keys)), "every acknowledged write survived")
        #expect(keys.count <= written.lines.count + 2)
        #expect(keys.allSatisfy { $0.hasSuffix(payload) }, "items intact")
    }
}
