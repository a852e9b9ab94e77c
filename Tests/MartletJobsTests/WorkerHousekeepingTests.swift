import Foundation
import Logging
import MartletAWS
import MartletTestSupport
import Testing

@testable import MartletWorker

/// The worker's housekeeping: settled messages deleted in batches, job folders removed.
@Suite("Worker housekeeping")
struct WorkerHousekeepingTests {
    let pipeline = JobsPipelineTests()

    @Test("Settled messages are deleted ten at a time at once, the rest by the next flush; failures are per message")
    func batchedDeletes() async throws {
        try await pipeline.withStack { stack in
            let sqs = SQSClient(stack.aws)
            let queue = stack.environment["JOBS_QUEUE_URL"]!
            for index in 0..<12 { try await sqs.sendMessage(queueURL: queue, body: #"{"jobId":"j\#(index)"}"#) }
            var received: [SQSMessage] = []
            while received.count < 12 { received += try await sqs.receiveMessages(queueURL: queue, maxMessages: 10, waitTime: 1, visibilityTimeout: 60) }
            func hidden() async throws -> Int {
                Int(try await sqs.queueAttributes(queueURL: queue, names: ["ApproximateNumberOfMessagesNotVisible"])["ApproximateNumberOfMessagesNotVisible"] ?? "") ?? -1
            }
            // A delay no test waits for: only a full batch or a flush deletes anything.
            let deletions = MessageDeletions(sqs: sqs, queueURL: queue, delay: .seconds(3600), logger: Logger(label: "test"), taskExecutor: nil)
            for message in received { deletions.delete(message.receiptHandle) }
            let deadline = ContinuousClock.now + .seconds(10)
            while try await hidden() != 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(try await hidden() == 2, "the first ten went at once")
            await deletions.flush()
            #expect(try await hidden() == 0)
            #expect(try await sqs.receiveMessages(queueURL: queue, waitTime: 0).isEmpty)

            // A bad receipt handle fails alone.
            try await sqs.sendMessage(queueURL: queue, body: "x")
            let message = try #require(try await sqs.receiveMessages(queueURL: queue, waitTime: 1).first)
            let failed = try await sqs.deleteMessageBatch(queueURL: queue, receiptHandles: [message.receiptHandle, "not-a-handle"])
            #expect(failed.map(\.receiptHandle) == ["not-a-handle"] && failed.first?.code == "ReceiptHandleIsInvalid")
            #expect(try await hidden() == 0)
        }
    }

    @Test("A job's folder is made, and removed with everything in it")
    func workFolders() throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-work-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let folder = parent + "/job-1"
        try WorkFolder.create(folder)  // the parent does not exist yet
        try Data("x".utf8).write(to: URL(fileURLWithPath: folder + "/result.json"))
        try FileManager.default.createDirectory(atPath: folder + "/nested/deeper", withIntermediateDirectories: true)
        try Data("y".utf8).write(to: URL(fileURLWithPath: folder + "/nested/deeper/file"))
        WorkFolder.remove(folder)
        #expect(!FileManager.default.fileExists(atPath: folder))
        try WorkFolder.create(folder)
        WorkFolder.remove(folder)
        #expect(!FileManager.default.fileExists(atPath: folder))
        WorkFolder.remove(folder)  // already gone: nothing to do
    }

    @Test("A finished job's folder is emptied for the next job; one that cannot be emptied is removed")
    func workFoldersAreReused() throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-work-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let folders = WorkFolders(in: parent)
        let first = try folders.take()
        let second = try folders.take()
        #expect(first != second)  // two jobs at once: two folders
        try Data("x".utf8).write(to: URL(fileURLWithPath: first + "/result.json"))
        folders.giveBack(first)
        let next = try folders.take()
        #expect(next == first)
        #expect(try FileManager.default.contentsOfDirectory(atPath: next).isEmpty)  // nothing of the last job is left
        // A model that left a folder behind: the job's folder goes, and the next job gets a new one.
        try FileManager.default.createDirectory(atPath: next + "/nested", withIntermediateDirectories: true)
        folders.giveBack(next)
        #expect(!FileManager.default.fileExists(atPath: next))
        folders.giveBack(second)
        #expect(try folders.take() == second)
        folders.giveBack(second)
        folders.removeAll()
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).isEmpty)
    }
}
