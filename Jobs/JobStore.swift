import Logging
import MartletAWS

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The jobs table: every state change is one conditional write, so duplicate deliveries, racing
/// workers and a cancel arriving mid-run can never produce an illegal transition or two results.
///
/// Besides job items the table holds one item per client (`jobId = "owner#<owner>"`) whose number
/// `jobsInFlight` counts the client's unfinished jobs. It changes only in one transaction with the
/// job it counts (a job is created with one more and reaches a final state with one less), so it
/// can neither drift nor pass the client's limit, and stays one small item however many jobs run.
public struct JobStore: Sendable {
    public let dynamoDB: DynamoDBClient
    public let table: String
    /// How long finished records stay (DynamoDB TTL).
    public var retention: Int64 = 7 * 24 * 3600

    public init(dynamoDB: DynamoDBClient, table: String) {
        self.dynamoDB = dynamoDB
        self.table = table
    }

    static let names = [
        "#state": "state", "#owner": "owner", "#progress": "progress", "#message": "message", "#error": "error", "#worker": "workerId",
        "#lease": "leaseExpiresAt", "#attempts": "attempts", "#updated": "updatedAt", "#started": "startedAt", "#finished": "finishedAt",
        "#result": "resultKey", "#resultType": "resultType", "#expires": "expiresAt", "#count": "jobsInFlight",
    ]

    static func key(_ jobId: String) -> [String: AttributeValue] { ["jobId": .s(jobId)] }

    /// A job from its item: read directly, or by `DynamoDBDecoder` (which explains what it cannot read).
    static func decode(_ item: [String: AttributeValue]) throws -> Job {
        try Job(item: item) ?? DynamoDBDecoder().decode(Job.self, from: item)
    }

    /// A job by id (strongly consistent), or nil.
    public func job(_ jobId: String) async throws -> Job? {
        guard let item = try await dynamoDB.getItem(table: table, key: Self.key(jobId), consistentRead: true) else { return nil }
        guard item["owner"] != nil, item["state"] != nil else { return nil }
        return try Self.decode(item)
    }

    /// Stores a new QUEUED job and takes one of its owner's `limit` slots, both or neither; with
    /// the same id already stored (an idempotent resubmission) returns that job instead. A client
    /// with `limit` unfinished jobs is refused with ``JobError/tooManyJobs(_:)``.
    public func create(_ job: Job, limit: Int) async throws -> (job: Job, created: Bool) {
        let cancelled = try await transact([
            .put(table: table, item: job.item, condition: "attribute_not_exists(jobId)"),
            .update(
                table: table, key: Self.ownerKey(job.owner), update: "ADD #count :one", condition: "attribute_not_exists(#count) OR #count < :limit",
                attributes: ExpressionAttributes(names: ["#count": "jobsInFlight"], values: [":one": .n("1"), ":limit": .number(Int64(limit))])
            ),
        ])
        guard let cancelled else { return (job, true) }
        let reasons = cancelled.cancellationReasons
        if reasons.first?.code == "ConditionalCheckFailed" {
            guard let existing = try await self.job(job.jobId), existing.owner == job.owner else {
                throw JobError.conflict("job id \(job.jobId) is taken")
            }
            return (existing, false)
        }
        if reasons.count == 2, reasons[1].code == "ConditionalCheckFailed" { throw JobError.tooManyJobs(limit) }
        throw cancelled
    }

    /// Takes a QUEUED job, or a RUNNING one whose worker stopped heartbeating, for `workerId` until `leaseUntil` (ms).
    /// Nil when the job is finished, cancelled, or held by a live worker (a duplicate delivery).
    public func claim(_ jobId: String, workerId: String, now: Int64, leaseUntil: Int64) async throws -> Job? {
        try await transition(
            jobId, update: "SET #state = :running, #worker = :worker, #lease = :lease, #updated = :now, #started = if_not_exists(#started, :now), "
                + "#attempts = #attempts + :one, #progress = :zero, #message = :claimed REMOVE #error",
            condition: "#state = :queued OR (#state = :running AND #lease < :now)",
            values: [
                ":running": .s(JobState.running.rawValue), ":queued": .s(JobState.queued.rawValue), ":worker": .s(workerId), ":lease": .number(leaseUntil),
                ":now": .number(now), ":one": .n("1"), ":zero": .n("0"), ":claimed": .s("started"),
            ]
        )
    }

    /// What a worker learns when it writes to a job it holds.
    public enum Hold: Sendable, Equatable {
        /// Still ours and running.
        case held
        /// Its owner cancelled it: stop.
        case cancelled
        /// Not ours any more (the lease lapsed and another worker took it, or it finished).
        case lost
    }

    /// Extends the worker's lease.
    public func heartbeat(_ jobId: String, workerId: String, now: Int64, leaseUntil: Int64) async throws -> Hold {
        try await hold(jobId, workerId: workerId, update: "SET #lease = :lease, #updated = :now", values: [":lease": .number(leaseUntil), ":now": .number(now)])
    }

    /// Records progress (0…100) and a message.
    public func progress(_ jobId: String, workerId: String, percent: Int, message: String, now: Int64) async throws -> Hold {
        try await hold(
            jobId, workerId: workerId, update: "SET #progress = :progress, #message = :message, #updated = :now",
            values: [":progress": .number(Int64(max(0, min(100, percent)))), ":message": .s(message), ":now": .number(now)]
        )
    }

    /// RUNNING → SUCCEEDED with the result's key, giving the owner's slot back; returns the job as
    /// it now is, or nil when it was not ours any more (nothing changed). `job` is the job as claimed.
    public func succeed(_ job: Job, workerId: String, resultKey: String, resultType: String, summary: String?, now: Int64) async throws -> Job? {
        var done = job
        done.state = .succeeded
        done.resultKey = resultKey
        done.resultType = resultType
        done.progress = 100
        done.message = summary ?? "done"
        done.updatedAt = now
        done.finishedAt = now
        done.expiresAt = now / 1000 + retention
        done.leaseExpiresAt = nil
        let changed = try await finish(
            job.jobId, owner: job.owner, update: "SET #state = :done, #result = :result, #resultType = :type, #progress = :hundred, #message = :summary, #updated = :now, "
                + "#finished = :now, #expires = :expires REMOVE #lease",
            condition: "#state = :running AND #worker = :worker",
            values: [
                ":done": .s(JobState.succeeded.rawValue), ":running": .s(JobState.running.rawValue), ":worker": .s(workerId), ":result": .s(resultKey),
                ":type": .s(resultType), ":hundred": .n("100"), ":summary": .s(done.message!), ":now": .number(now),
                ":expires": .number(done.expiresAt!),
            ]
        )
        return changed ? done : nil
    }

    /// An attempt failed: back to QUEUED for another attempt, or FAILED for good when `final` (which
    /// gives the owner's slot back). `job` is the job as claimed.
    public func fail(_ job: Job, workerId: String, error: String, final: Bool, now: Int64) async throws -> Job? {
        if final {
            var failed = job
            failed.state = .failed
            failed.error = error
            failed.message = error
            failed.updatedAt = now
            failed.finishedAt = now
            failed.expiresAt = now / 1000 + retention
            failed.leaseExpiresAt = nil
            failed.workerId = nil
            let changed = try await finish(
                job.jobId, owner: job.owner, update: "SET #state = :failed, #error = :error, #message = :error, #updated = :now, #finished = :now, #expires = :expires REMOVE #lease, #worker",
                condition: "#state = :running AND #worker = :worker",
                values: [
                    ":failed": .s(JobState.failed.rawValue), ":running": .s(JobState.running.rawValue), ":worker": .s(workerId), ":error": .s(error),
                    ":now": .number(now), ":expires": .number(failed.expiresAt!),
                ]
            )
            return changed ? failed : nil
        }
        return try await transition(
            job.jobId, update: "SET #state = :queued, #error = :error, #message = :retrying, #updated = :now REMOVE #lease, #worker",
            condition: "#state = :running AND #worker = :worker",
            values: [
                ":queued": .s(JobState.queued.rawValue), ":running": .s(JobState.running.rawValue), ":worker": .s(workerId), ":error": .s(error),
                ":retrying": .s("attempt failed, will retry: \(error)"), ":now": .number(now),
            ]
        )
    }

    /// Hands a job back (the worker is stopping): RUNNING → QUEUED, and the attempt does not count.
    public func release(_ jobId: String, workerId: String, now: Int64) async throws -> Job? {
        try await transition(
            jobId, update: "SET #state = :queued, #message = :released, #updated = :now, #attempts = #attempts - :one REMOVE #lease, #worker",
            condition: "#state = :running AND #worker = :worker",
            values: [
                ":queued": .s(JobState.queued.rawValue), ":running": .s(JobState.running.rawValue), ":worker": .s(workerId),
                ":released": .s("worker stopped; waiting for another"), ":now": .number(now), ":one": .n("1"),
            ]
        )
    }

    /// The owner cancels: QUEUED | RUNNING → CANCELLED, giving the slot back; returns the job as it
    /// now is, or nil when it was already finished (or not theirs).
    public func cancel(_ jobId: String, owner: String, now: Int64) async throws -> Job? {
        let changed = try await finish(
            jobId, owner: owner, update: "SET #state = :cancelled, #message = :cancelledMessage, #updated = :now, #finished = :now, #expires = :expires REMOVE #lease",
            condition: "#owner = :owner AND (#state = :queued OR #state = :running)",
            values: [
                ":cancelled": .s(JobState.cancelled.rawValue), ":queued": .s(JobState.queued.rawValue), ":running": .s(JobState.running.rawValue),
                ":owner": .s(owner), ":cancelledMessage": .s("cancelled"), ":now": .number(now), ":expires": .number(now / 1000 + retention),
            ]
        )
        return changed ? try await self.job(jobId) : nil
    }

    // MARK: Per-client slots

    static func ownerKey(_ owner: String) -> [String: AttributeValue] { ["jobId": .s("owner#\(owner)")] }

    /// How many of the owner's jobs are unfinished (their slots taken).
    public func jobsInFlight(owner: String) async throws -> Int {
        guard case .n(let count)? = try await dynamoDB.getItem(table: table, key: Self.ownerKey(owner), consistentRead: true)?["jobsInFlight"] else { return 0 }
        return Int(count) ?? 0
    }

    // MARK: Writes

    private func transition(_ jobId: String, update: String, condition: String, values: [String: AttributeValue]) async throws -> Job? {
        do {
            let item = try await dynamoDB.updateItem(
                table: table, key: Self.key(jobId), update: update, condition: "attribute_exists(jobId) AND (\(condition))",
                attributes: ExpressionAttributes(names: Self.usedNames(update + " " + condition), values: values), returnValues: .allNew
            )
            return try item.map(Self.decode)
        } catch let error as AWSServiceError where error.isConditionalCheckFailed {
            return nil
        }
    }

    /// Moves a job to a final state (when `condition` holds) and gives its owner's slot back, in one
    /// transaction; false when the condition did not hold (nothing changed).
    private func finish(_ jobId: String, owner: String, update: String, condition: String, values: [String: AttributeValue]) async throws -> Bool {
        guard let cancelled = try await transact([
            .update(
                table: table, key: Self.key(jobId), update: update, condition: "attribute_exists(jobId) AND (\(condition))",
                attributes: ExpressionAttributes(names: Self.usedNames(update + " " + condition), values: values)
            ),
            .update(
                table: table, key: Self.ownerKey(owner), update: "ADD #count :minusOne",
                attributes: ExpressionAttributes(names: ["#count": "jobsInFlight"], values: [":minusOne": .n("-1")])
            ),
        ]) else { return true }
        if cancelled.cancellationReasons.first?.code == "ConditionalCheckFailed" { return false }
        throw cancelled
    }

    /// Runs a transaction; returns nil when it was made, or the error that cancelled it (with its
    /// reasons). A transaction that met another on the same item (`TransactionConflict`) is tried again.
    private func transact(_ writes: [TransactionWrite]) async throws -> AWSServiceError? {
        var attempt = 0
        while true {
            do {
                try await dynamoDB.transactWriteItems(writes)
                return nil
            } catch let error as AWSServiceError where error.isTransactionCanceled {
                guard error.cancellationReasons.contains(where: { $0.code == "TransactionConflict" }), attempt < 6 else { return error }
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(5 << attempt))))
            }
        }
    }

    private func hold(_ jobId: String, workerId: String, update: String, values: [String: AttributeValue]) async throws -> Hold {
        var values = values
        values[":running"] = .s(JobState.running.rawValue)
        values[":worker"] = .s(workerId)
        if try await transition(jobId, update: update, condition: "#state = :running AND #worker = :worker", values: values) != nil { return .held }
        return try await job(jobId)?.state == .cancelled ? .cancelled : .lost
    }

    /// DynamoDB refuses unused expression attribute names: pass only those the expressions use
    /// (each `#name` token, read in one pass over the bytes).
    static func usedNames(_ expressions: String) -> [String: String] {
        var used: [String: String] = [:]
        var token: [UInt8] = []
        var inToken = false
        func finish() {
            if inToken, let name = names["#" + String(decoding: token, as: UTF8.self)] { used["#" + String(decoding: token, as: UTF8.self)] = name }
            token.removeAll(keepingCapacity: true)
            inToken = false
        }
        for byte in expressions.utf8 {
            if byte == UInt8(ascii: "#") {
                finish()
                inToken = true
            } else if inToken, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
            {
                token.append(byte)
            } else {
                finish()
            }
        }
        finish()
        return used
    }
}

extension AttributeValue {
    static func number(_ value: Int64) -> Self { .n(String(value)) }
}
