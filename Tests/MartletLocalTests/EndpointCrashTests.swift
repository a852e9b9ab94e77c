import Foundation
import NIOCore
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

    @Test("SIGKILL during large uploads: no partial object is visible, the acknowledged object is intact, no stray files remain")
    func s3SurvivesKill() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-crash-s3-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (first, url) = try start(data: folder)
        let s3 = S3Client(client(url), addressing: .path)
        try await s3.createBucket("results")
        let original = [UInt8](repeating: 1, count: 1 << 20)
        try await s3.putObject(bucket: "results", key: "keep", body: .bytes(ByteBuffer(bytes: original)))

        // Two uploads in flight — a new 64 MiB object and an overwrite of `keep` — each 8 MiB in when the process dies.
        let port = Int(url.split(separator: ":").last!)!
        var sockets: [Int32] = []
        for key in ["big", "keep"] {
            let target = RequestURL(string: "\(url)/results/\(key)")!
            let length = 64 << 20
            let headers = SigV4Signer(credentials: Credentials(accessKeyID: "test", secretAccessKey: "test"), region: "us-east-1", service: "s3")
                .sign(method: "PUT", url: target, headers: [("Content-Length", String(length))], payload: .unsigned, at: .now)
            var head = "PUT /results/\(key) HTTP/1.1\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            head += "\r\n"
            let socket = try connectLoopback(port: port)
            try sendAll(socket, Array(head.utf8))
            try sendAll(socket, [UInt8](repeating: 2, count: 8 << 20))
            sockets.append(socket)
        }
        try await Task.sleep(for: .milliseconds(300))
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        for socket in sockets { close(socket) }

        let (second, secondURL) = try start(data: folder)
        defer { second.terminate(); second.waitUntilExit() }
        let restarted = S3Client(client(secondURL), addressing: .path)
        do {
            _ = try await restarted.headObject(bucket: "results", key: "big")
            Issue.record("a partial upload became visible")
        } catch let error as AWSServiceError {
            #expect(error.status == 404)
        }
        let kept = try await restarted.getObject(bucket: "results", key: "keep")
        var bytes: [UInt8] = []
        for try await chunk in kept.body { bytes += chunk.readableBytesView }
        #expect(bytes == original, "the acknowledged object is the one that survived")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: folder + "/s3/tmp")) == [], "interrupted uploads were cleaned up")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: folder + "/s3/blobs"))?.count == 1, "only the live object's file remains")
    }

    func connectLoopback(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let status = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard status == 0 else { throw POSIXError(.ECONNREFUSED) }
        return fd
    }

    func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard sent > 0 else { throw POSIXError(.EPIPE) }
            offset += sent
        }
    }
}
