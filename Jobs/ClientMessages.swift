import Logging
import MartletAWS
import MartletJSON
import MartletRuntime

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the server tells a client over its WebSocket (and what HTTP responses carry), one JSON
/// object per message with a `type`.
public struct ClientMessage: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// A submit was accepted (`duplicate` when an idempotency key matched an earlier job).
        case accepted
        /// A job's current record (answer to `status`, or after a state change such as a cancel).
        case status
        /// Progress of a running job.
        case progress
        /// The job succeeded: `url` downloads the result until it expires.
        case result
        /// The job failed for good.
        case failed
        /// A request was refused.
        case error
    }

    public var type: Kind
    public var jobId: String?
    public var job: JobView?
    public var progress: Int?
    public var message: String?
    public var url: String?
    public var contentType: String?
    public var expiresIn: Int?
    public var duplicate: Bool?
    public var code: String?

    public init(
        type: Kind, jobId: String? = nil, job: JobView? = nil, progress: Int? = nil, message: String? = nil, url: String? = nil,
        contentType: String? = nil, expiresIn: Int? = nil, duplicate: Bool? = nil, code: String? = nil
    ) {
        self.type = type
        self.jobId = jobId
        self.job = job
        self.progress = progress
        self.message = message
        self.url = url
        self.contentType = contentType
        self.expiresIn = expiresIn
        self.duplicate = duplicate
        self.code = code
    }

    public static func error(_ error: JobError) -> Self { Self(type: .error, message: error.message, code: error.code) }

    /// The message as JSON, keys sorted, absent fields left out: what `JSONEncoder` with
    /// `.sortedKeys` writes, by hand (this runs for every message a client gets).
    public var json: String {
        var object = JSONObjectWriter()
        object.string("code", code)
        object.string("contentType", contentType)
        object.bool("duplicate", duplicate)
        object.integer("expiresIn", expiresIn)
        if let job { object.raw("job", job.jsonBytes) }
        object.string("jobId", jobId)
        object.string("message", message)
        object.integer("progress", progress)
        object.string("type", type.rawValue)
        object.string("url", url)
        return object.finished
    }
}

extension JobView {
    /// The view as JSON, keys sorted (as `JSONEncoder` with `.sortedKeys` writes it).
    var jsonBytes: [UInt8] {
        var object = JSONObjectWriter()
        object.integer("attempts", attempts)
        object.integer("createdAt", createdAt)
        object.string("error", error)
        object.integer("finishedAt", finishedAt)
        object.bool("hasResult", hasResult)
        object.string("jobId", jobId)
        object.string("message", message)
        object.string("model", model)
        object.integer("progress", progress)
        object.integer("startedAt", startedAt)
        object.string("state", state.rawValue)
        object.integer("updatedAt", updatedAt)
        return object.finishedBytes
    }
}


/// Pushes messages to WebSocket clients through `@connections`. A client that left is not an
/// error: it can reconnect and ask for its job's status.
public struct ClientNotifier: Sendable {
    let connections: ConnectionsClient?
    let logger: Logger
    let metrics: JobMetrics

    public init(connections: ConnectionsClient?, logger: Logger, metrics: JobMetrics = JobMetrics()) {
        self.connections = connections
        self.logger = logger
        self.metrics = metrics
    }

    /// Pushes through the `@connections` API at `webSocketEndpoint` (`WEBSOCKET_ENDPOINT`); with
    /// none configured, pushing is off.
    public init(webSocketEndpoint: String?, aws: AWSClient, logger: Logger, metrics: JobMetrics = JobMetrics()) throws {
        self.init(connections: try webSocketEndpoint.map { try ConnectionsClient(aws, endpoint: $0) }, logger: logger, metrics: metrics)
    }

    /// Sends `message` to `connectionId`; false when the connection is gone (or pushing is not configured).
    @discardableResult
    public func send(_ message: ClientMessage, to connectionId: String?) async -> Bool {
        guard let connections, let connectionId else { return false }
        do {
            try await connections.post(Array(message.json.utf8), to: connectionId)
            if message.type == .progress { metrics.count(MetricCatalog.progressMessages) }
            return true
        } catch is ConnectionGoneError {
            metrics.count(MetricCatalog.connectionsGone)
            logger.debug("Client connection is gone", metadata: ["connection.id": "\(connectionId)"])
            return false
        } catch {
            logger.warning("Could not reach a client", metadata: ["connection.id": "\(connectionId)", "error": "\(error)"])
            return false
        }
    }
}

/// The message a job's queue entry carries.
public struct JobQueueMessage: Codable, Sendable, Equatable {
    public var jobId: String

    public init(jobId: String) { self.jobId = jobId }

    /// `{"jobId":"…"}`, written directly.
    public var body: String {
        var object = JSONObjectWriter()
        object.string("jobId", jobId)
        return object.finished
    }

    /// Reads a queue message's body; nil when it is not a job's.
    public init?(body: String) {
        if case .string(let jobId)? = AttributeValueJSON.decodeMembers(Array(body.utf8))?["jobId"] {
            self.jobId = jobId
        } else if let decoded = try? JSONDecoder().decode(Self.self, from: Data(body.utf8)) {
            self = decoded
        } else {
            return nil
        }
    }
}

/// Milliseconds since 1970, the unit of job timestamps.
public func currentMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
