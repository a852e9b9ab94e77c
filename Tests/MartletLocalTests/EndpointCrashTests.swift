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
        var banner = Data()
        while !banner.contains(UInt8(ascii: "\n")) {
            let chunk = stderr.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            banner.append(chunk)
        }
        let line = String(decoding: banner, as: UTF8.self)
        guard let range = line.range(of: "http://") else { throw CancellationError() }
        return (process, String(line[range.lowerBound...].prefix { !$0.isWhitespace }))
    }

    func client(_ url: String) -> AWSClient {
        AWSClient(
            configuration: AWSConfiguration(region: "us-east-1", endpointURL: url, retry: RetryPolicy(maxAttempts: 1)),
            credentials: StaticCredentialProvider(Credentials(accessKeyID: "test", secretAccessKey: "test"))
        )
    }

    @Test("SIGKILL during a stream of sends: every acknowledged message is there once, intact, after a restart")
    func sqsSurvivesKill() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-crash-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (first, url) = try start(data: folder)
        let sqs = SQSClient(client(url))
        let queue = try await sqs.createQueue(named: "jobs")
        let acknowledged = LineRecorder()
        let pid = first.processIdentifier
        let payload = String(repeating: "0123456789", count: 20)
        // Send until the process dies; kill it once 300 sends were acknowledged.
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var index = 0
                    while true {
                        let body = "\(worker)-\(index)-\(payload)"
                        do {
                            try await sqs.sendMessage(queueURL: queue, body: body)
                        } catch {
                            return
                        }
                        acknowledged.sink(body)
                        if acknowledged.lines.count >= 300 { kill(pid, SIGKILL) }
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
        #expect(sent.count >= 300)
        #expect(Set(received).count == received.count, "no duplicates")
        #expect(Set(sent).isSubset(of: Set(received)), "every acknowledged message survived")
        // Only the sends in flight at the kill (at most one per worker) may have landed unacknowledged.
        #expect(received.count <= sent.count + 4)
        #expect(received.allSatisfy { $0.hasSuffix(payload) }, "bodies intact")
    }
}
