import MartletAWS
import MartletRuntime

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a job is in its life. Only conditional writes move it, along these edges:
/// QUEUED → RUNNING (claimed) → SUCCEEDED | FAILED, RUNNING → QUEUED (attempt failed, or handed
/// back at a Spot stop), QUEUED | RUNNING → CANCELLED (by its owner).
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued = "QUEUED"
    case running = "RUNNING"
    case succeeded = "SUCCEEDED"
    case failed = "FAILED"
    case cancelled = "CANCELLED"

    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// A job record, as stored in the jobs table (one item per job, keyed by `jobId`).
public struct Job: Codable, Sendable, Equatable {
    public var jobId: String
    /// The client that submitted it (derived from its key; never the key itself).
    public var owner: String
    public var state: JobState
    public var model: String
    /// The parameters as the client sent them (a JSON object).
    public var parameters: [String: JSONValue]
    public var inputKey: String?
    public var idempotencyKey: String?
    /// Attempts started so far (claims).
    public var attempts: Int
    /// 0…100.
    public var progress: Int
    public var message: String?
    /// Milliseconds since 1970.
    public var createdAt: Int64
    public var updatedAt: Int64
    public var startedAt: Int64?
    public var finishedAt: Int64?
    public var resultKey: String?
    public var resultType: String?
    public var error: String?
    /// The WebSocket connection that submitted it, to push progress to.
    public var connectionId: String?
    /// The X-Ray trace header of the request that submitted it (the queue message carries it too).
    public var traceHeader: String?
    /// The worker holding it while RUNNING, and until when (ms) its claim holds without a heartbeat.
    public var workerId: String?
    public var leaseExpiresAt: Int64?
    /// DynamoDB TTL (seconds since 1970): records go away some days after they finish.
    public var expiresAt: Int64?

    public init(
        jobId: String, owner: String, model: String, parameters: [String: JSONValue], inputKey: String? = nil, idempotencyKey: String? = nil,
        connectionId: String? = nil, traceHeader: String? = nil, now: Int64
    ) {
        self.traceHeader = traceHeader
        self.jobId = jobId
        self.owner = owner
        self.state = .queued
        self.model = model
        self.parameters = parameters
        self.inputKey = inputKey
        self.idempotencyKey = idempotencyKey
        self.attempts = 0
        self.progress = 0
        self.createdAt = now
        self.updatedAt = now
        self.connectionId = connectionId
    }

    /// What a client sees of a job.
    public var view: JobView {
        JobView(
            jobId: jobId, state: state, model: model, progress: progress, message: message, attempts: attempts, createdAt: createdAt,
            updatedAt: updatedAt, startedAt: startedAt, finishedAt: finishedAt, hasResult: resultKey != nil, error: error
        )
    }
}

/// A job as its owner sees it (no worker, lease or owner fields).
public struct JobView: Codable, Sendable, Equatable {
    public var jobId: String
    public var state: JobState
    public var model: String
    public var progress: Int
    public var message: String?
    public var attempts: Int
    public var createdAt: Int64
    public var updatedAt: Int64
    public var startedAt: Int64?
    public var finishedAt: Int64?
    public var hasResult: Bool
    public var error: String?
}

/// A client's request for a job, validated before anything is stored.
public struct JobRequest: Sendable, Equatable {
    public var model: String
    public var parameters: [String: JSONValue]
    public var inputKey: String?
    public var idempotencyKey: String?

    /// The largest parameters object, as JSON.
    public static let maxParametersBytes = 16 * 1024

    public init(model: String, parameters: [String: JSONValue] = [:], inputKey: String? = nil, idempotencyKey: String? = nil) {
        self.model = model
        self.parameters = parameters
        self.inputKey = inputKey
        self.idempotencyKey = idempotencyKey
    }

    /// Reads and validates `{"model": …, "parameters": {…}, "inputKey": …, "idempotencyKey": …}`.
    /// `owner` bounds which input objects the request may name (`inputs/<owner>/…`).
    public init(json object: [String: JSONValue], owner: String) throws(JobError) {
        guard case .string(let model)? = object["model"] else { throw .invalidRequest("\"model\" is required: the name of a model, such as \"demo\"") }
        guard (1...64).contains(model.utf8.count), model.utf8.allSatisfy(Self.isNameByte) else {
            throw .invalidRequest("\"model\" must be 1-64 characters of a-z, 0-9, '-' and '_'")
        }
        var parameters: [String: JSONValue] = [:]
        switch object["parameters"] {
        case nil, .null?: break
        case .object(let value)?: parameters = value
        default: throw .invalidRequest("\"parameters\" must be a JSON object")
        }
        if let size = try? JSONEncoder().encode(parameters).count, size > Self.maxParametersBytes {
            throw .invalidRequest("\"parameters\" is \(size) bytes of JSON; the limit is \(Self.maxParametersBytes)")
        }
        var inputKey: String?
        switch object["inputKey"] {
        case nil, .null?: break
        case .string(let key)?:
            guard key.hasPrefix(JobKeys.inputPrefix(owner: owner)), key.utf8.count <= 1024, !key.split(separator: "/").contains("..") else {
                throw .invalidRequest("\"inputKey\" must be an object you uploaded (a key under \(JobKeys.inputPrefix(owner: owner)))")
            }
            inputKey = key
        default: throw .invalidRequest("\"inputKey\" must be a string")
        }
        var idempotencyKey: String?
        switch object["idempotencyKey"] {
        case nil, .null?: break
        case .string(let key)?:
            guard (1...128).contains(key.utf8.count) else { throw .invalidRequest("\"idempotencyKey\" must be 1-128 characters") }
            idempotencyKey = key
        default: throw .invalidRequest("\"idempotencyKey\" must be a string")
        }
        self.init(model: model, parameters: parameters, inputKey: inputKey, idempotencyKey: idempotencyKey)
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
}

/// The object keys jobs use: inputs and results live under their owner's prefix.
public enum JobKeys {
    public static func inputPrefix(owner: String) -> String { "inputs/\(owner)/" }
    public static func result(owner: String, jobId: String, fileName: String) -> String { "results/\(owner)/\(jobId)/\(fileName)" }
}

/// A refusal a client can act on: the HTTP status and a message (WebSocket clients get the same message).
public struct JobError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static func invalidRequest(_ message: String) -> Self { Self(status: 400, code: "InvalidRequest", message: message) }
    public static let unauthorized = Self(status: 401, code: "Unauthorized", message: "A client key is required (the x-api-key header, or ?key= on WebSocket connect)")
    public static let forbidden = Self(status: 403, code: "Forbidden", message: "The client key is not valid")
    public static func notFound(_ jobId: String) -> Self { Self(status: 404, code: "NotFound", message: "No job \(jobId)") }
    public static func conflict(_ message: String) -> Self { Self(status: 409, code: "Conflict", message: message) }
    public static func tooManyJobs(_ limit: Int) -> Self {
        Self(status: 429, code: "TooManyJobs", message: "You have \(limit) jobs queued or running, the most allowed at once; wait for one to finish")
    }
}

// MARK: - Items

extension Job {
    /// The job as a DynamoDB item, built directly: the item `DynamoDBEncoder` makes of it (absent
    /// optionals left out, the parameters as a map), without going through JSON.
    public var item: [String: AttributeValue] {
        var item: [String: AttributeValue] = [
            "jobId": .s(jobId), "owner": .s(owner), "state": .s(state.rawValue), "model": .s(model),
            "parameters": .m(parameters.mapValues(Self.attribute)), "attempts": .n(String(attempts)), "progress": .n(String(progress)),
            "createdAt": .n(String(createdAt)), "updatedAt": .n(String(updatedAt)),
        ]
        func put(_ name: String, _ value: String?) { if let value { item[name] = .s(value) } }
        func put(_ name: String, _ value: Int64?) { if let value { item[name] = .n(String(value)) } }
        put("inputKey", inputKey)
        put("idempotencyKey", idempotencyKey)
        put("message", message)
        put("startedAt", startedAt)
        put("finishedAt", finishedAt)
        put("resultKey", resultKey)
        put("resultType", resultType)
        put("error", error)
        put("connectionId", connectionId)
        put("traceHeader", traceHeader)
        put("workerId", workerId)
        put("leaseExpiresAt", leaseExpiresAt)
        put("expiresAt", expiresAt)
        return item
    }

    /// A job read directly from its item; nil when the item holds something this reader does not
    /// expect (`DynamoDBDecoder` then reads it, and says what is wrong).
    public init?(item: [String: AttributeValue]) {
        func string(_ name: String) -> String?? {
            switch item[name] {
            case nil, .null?: .some(nil)
            case .s(let text)?: .some(text)
            default: nil
            }
        }
        func integer(_ name: String) -> Int64?? {
            switch item[name] {
            case nil, .null?: .some(nil)
            case .n(let text)?: Int64(text).map { .some($0) } ?? nil
            default: nil
            }
        }
        guard case .s(let jobId)? = item["jobId"], case .s(let owner)? = item["owner"], case .s(let stateName)? = item["state"],
            let state = JobState(rawValue: stateName), case .s(let model)? = item["model"], case .m(let parameterItems)? = item["parameters"],
            let attempts = integer("attempts") ?? nil, let progress = integer("progress") ?? nil, let createdAt = integer("createdAt") ?? nil,
            let updatedAt = integer("updatedAt") ?? nil,
            let inputKey = string("inputKey"), let idempotencyKey = string("idempotencyKey"), let message = string("message"),
            let startedAt = integer("startedAt"), let finishedAt = integer("finishedAt"), let resultKey = string("resultKey"),
            let resultType = string("resultType"), let error = string("error"), let connectionId = string("connectionId"),
            let traceHeader = string("traceHeader"), let workerId = string("workerId"), let leaseExpiresAt = integer("leaseExpiresAt"),
            let expiresAt = integer("expiresAt")
        else { return nil }
        var parameters: [String: JSONValue] = [:]
        for (name, value) in parameterItems {
            guard let json = Self.json(value) else { return nil }
            parameters[name] = json
        }
        self.init(
            jobId: jobId, owner: owner, model: model, parameters: parameters, inputKey: inputKey, idempotencyKey: idempotencyKey,
            connectionId: connectionId, traceHeader: traceHeader, now: createdAt
        )
        self.state = state
        self.attempts = Int(attempts)
        self.progress = Int(progress)
        self.message = message
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.resultKey = resultKey
        self.resultType = resultType
        self.error = error
        self.workerId = workerId
        self.leaseExpiresAt = leaseExpiresAt
        self.expiresAt = expiresAt
    }

    /// A parameter as `DynamoDBEncoder` stores it (whole numbers without a fraction).
    static func attribute(_ value: JSONValue) -> AttributeValue {
        switch value {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .number(let number): .n(number.rounded() == number && abs(number) < 9.0e15 ? String(Int64(number)) : "\(number)")
        case .string(let text): .s(text)
        case .array(let items): .l(items.map(attribute))
        case .object(let members): .m(members.mapValues(attribute))
        }
    }

    static func json(_ value: AttributeValue) -> JSONValue? {
        switch value {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .n(let text): return Double(text).map(JSONValue.number)
        case .s(let text): return .string(text)
        case .l(let items):
            var values: [JSONValue] = []
            for item in items {
                guard let json = json(item) else { return nil }
                values.append(json)
            }
            return .array(values)
        case .m(let members):
            var object: [String: JSONValue] = [:]
            for (name, member) in members {
                guard let json = json(member) else { return nil }
                object[name] = json
            }
            return .object(object)
        default: return nil
        }
    }
}
