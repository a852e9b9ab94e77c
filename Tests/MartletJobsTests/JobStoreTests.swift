import Foundation
import MartletAWS
import MartletRuntime
import Testing

@testable import MartletJobs

@Suite struct JobStoreTests {
    /// DynamoDB refuses names an expression does not use, so each write passes exactly the ones it uses.
    @Test func passesOnlyTheNamesAnExpressionUses() {
        let update = "SET #state = :running, #worker = :worker, #started = if_not_exists(#started, :now) REMOVE #error"
        #expect(JobStore.usedNames(update) == ["#state": "state", "#worker": "workerId", "#started": "startedAt", "#error": "error"])
        #expect(JobStore.usedNames("attribute_exists(jobId) AND (#state = :running AND #lease < :now)") == ["#state": "state", "#lease": "leaseExpiresAt"])
        // A name that is a prefix of another is not taken for it, and unknown names are left out.
        #expect(JobStore.usedNames("SET #stateX = :a, #resultType = :t") == ["#resultType": "resultType"])
        #expect(JobStore.usedNames("SET a = :b") == [:])
    }

    static func jobs() -> [Job] {
        var bare = Job(jobId: "j-1", owner: "ada", model: "noop", parameters: [:], now: 1_700_000_000_000)
        bare.state = .queued
        var full = Job(
            jobId: "i-\u{e9}\"quoted\"", owner: "bo", model: "demo",
            parameters: [
                "prompt": .string("a \"song\"\n\u{1F3B5}"), "seed": .number(42), "ratio": .number(0.25), "negative": .number(-3), "big": .number(1e20),
                "flag": .bool(true), "none": .null, "list": .array([.number(1), .string("x"), .array([]), .object(["k": .bool(false)])]),
                "nested": .object(["a": .object(["b": .number(1.5)])]),
            ],
            inputKey: "inputs/bo/x/in.wav", idempotencyKey: "key-1", connectionId: "conn=", traceHeader: "Root=1-2-3;Sampled=1", now: 1_700_000_000_001
        )
        full.state = .succeeded
        full.attempts = 2
        full.progress = 100
        full.message = "done"
        full.updatedAt = 1_700_000_000_900
        full.startedAt = 1_700_000_000_100
        full.finishedAt = 1_700_000_000_900
        full.resultKey = "results/bo/x/result.wav"
        full.resultType = "audio/wav"
        full.error = "earlier attempt: GPU fell over"
        full.workerId = "worker-1"
        full.leaseExpiresAt = 1_700_000_030_000
        full.expiresAt = 1_700_604_800
        return [bare, full]
    }

    /// Jobs are written and read as items directly; both directions agree with the Codable bridge.
    @Test func itemsAgreeWithTheCodableBridge() throws {
        for job in Self.jobs() {
            #expect(try DynamoDBDecoder().decode(Job.self, from: job.item) == job)
            let bridged = try DynamoDBEncoder().encode(job)
            #expect(Job(item: bridged) == job)
            #expect(try JobStore.decode(bridged) == job)
            #expect(Set(bridged.keys) == Set(job.item.keys))
        }
        // What the direct reader does not expect goes to the bridge, which names the problem.
        var odd = Self.jobs()[0].item
        odd["attempts"] = .s("two")
        #expect(Job(item: odd) == nil)
        #expect(throws: (any Error).self) { try JobStore.decode(odd) }
    }

    /// Client messages are written by hand; the JSON is what JSONEncoder (sorted keys) writes.
    @Test func clientMessagesAgreeWithJSONEncoder() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let messages = [
            ClientMessage(type: .accepted, jobId: "j-1", job: Self.jobs()[0].view, duplicate: false),
            ClientMessage(type: .result, jobId: "j\"2", job: Self.jobs()[1].view, url: "https://h/p?X-Amz-Signature=ab&x=1", contentType: "audio/wav", expiresIn: 900),
            ClientMessage(type: .progress, jobId: "j-3", progress: 40, message: "step \u{1F3B5} 2/5"),
            .error(.tooManyJobs(4)),
        ]
        for message in messages {
            let fast = try JSONSerialization.jsonObject(with: Data(message.json.utf8)) as? NSDictionary
            let codable = try JSONSerialization.jsonObject(with: encoder.encode(message)) as? NSDictionary
            #expect(fast == codable, "\(message.json)")
            #expect(try JSONDecoder().decode(ClientMessage.self, from: Data(message.json.utf8)) == message)
        }
        #expect(ClientMessage(type: .progress, jobId: "j", progress: 1).json == #"{"jobId":"j","progress":1,"type":"progress"}"#)
    }

    @Test func queueMessagesRoundTrip() throws {
        for id in ["j-1", "i-\"x\"\\y", "\u{e9}"] {
            let message = JobQueueMessage(jobId: id)
            #expect(try JSONDecoder().decode(JobQueueMessage.self, from: Data(message.body.utf8)) == message)
            #expect(JobQueueMessage(body: message.body) == message)
        }
        #expect(JobQueueMessage(body: #" { "jobId" : "spaced" } "#) == JobQueueMessage(jobId: "spaced"))
        #expect(JobQueueMessage(body: "not json") == nil)
        #expect(JobQueueMessage(body: #"{"other":1}"#) == nil)
    }
}
