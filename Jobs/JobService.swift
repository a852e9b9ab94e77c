import Logging
import MartletAWS
import MartletRuntime

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The application's operations, shared by the WebSocket and HTTP handlers: submit, status,
/// cancel, upload URLs and result URLs, each for one authenticated client.
public struct JobService: Sendable {
    public let configuration: ApplicationConfiguration
    public let jobs: JobStore
    public let connections: ConnectionStore
    public let sqs: SQSClient
    public let s3: S3Client
    public let notifier: ClientNotifier
    public let keys: ClientKeys
    let logger: Logger
    let metrics: JobMetrics

    public init(configuration: ApplicationConfiguration, aws: AWSClient, keys: ClientKeys, logger: Logger, metrics: JobMetrics = JobMetrics()) throws {
        self.metrics = metrics
        self.configuration = configuration
        let dynamoDB = DynamoDBClient(aws)
        jobs = JobStore(dynamoDB: dynamoDB, table: configuration.jobsTable)
        connections = ConnectionStore(dynamoDB: dynamoDB, table: configuration.connectionsTable)
        sqs = SQSClient(aws)
        s3 = S3Client(aws)
        notifier = try ClientNotifier(webSocketEndpoint: configuration.webSocketEndpoint, aws: aws, logger: logger, metrics: metrics)
        self.keys = keys
        self.logger = logger
    }

    /// Builds the service from the environment; with `authenticatesClients`, also loads the client
    /// keys (from `CLIENT_KEYS` or Secrets Manager).
    public static func make(environment: [String: String], authenticatesClients: Bool, logger: Logger) async throws -> JobService {
        let configuration = try ApplicationConfiguration(environment: environment)
        let aws = try AWSClient(environment: environment)
        var keys = ClientKeys(keys: [])
        if authenticatesClients {
            keys = try await ClientKeys.load(configuration, aws: aws)
            if keys.isEmpty { logger.warning("No client keys are configured (CLIENT_KEYS or CLIENT_KEYS_SECRET_ARN): every client will be refused") }
        }
        return try JobService(configuration: configuration, aws: aws, keys: keys, logger: logger)
    }

    /// The owner of a client key; a missing key is 401, an unknown one 403.
    public func authenticate(key: String?) throws(JobError) -> String {
        guard let key, !key.isEmpty else { throw .unauthorized }
        guard let owner = keys.owner(forKey: key) else { throw .forbidden }
        return owner
    }

    // MARK: Jobs

    /// Accepts a job: validates it, stores it QUEUED while taking one of the client's slots, and enqueues it.
    /// With an idempotency key already used by this client, returns that job instead (`duplicate`).
    /// `traceHeader` (the invocation's X-Ray header) goes with the job to the queue and the worker.
    public func submit(_ request: JobRequest, owner: String, connectionId: String? = nil, traceHeader: String? = nil) async throws -> ClientMessage {
        let jobId = request.idempotencyKey.map { Self.jobId(owner: owner, idempotencyKey: $0) } ?? RandomUUID.lowercased()
        if request.idempotencyKey != nil, let existing = try await jobs.job(jobId) {
            guard existing.owner == owner else { throw JobError.conflict("idempotency key collision") }
            return ClientMessage(type: .accepted, jobId: jobId, job: existing.view, duplicate: true)
        }
        let job = Job(
            jobId: jobId, owner: owner, model: request.model, parameters: request.parameters, inputKey: request.inputKey,
            idempotencyKey: request.idempotencyKey, connectionId: connectionId, traceHeader: traceHeader, now: currentMilliseconds()
        )
        let (stored, created) = try await jobs.create(job, limit: configuration.maxJobsInFlight)
        guard created else { return ClientMessage(type: .accepted, jobId: jobId, job: stored.view, duplicate: true) }
        do {
            try await sqs.sendMessage(queueURL: configuration.queueURL, body: JobQueueMessage(jobId: jobId).body, traceHeader: traceHeader)
        } catch {
            // Never leave a QUEUED job that no worker will see.
            _ = try? await jobs.cancel(jobId, owner: owner, now: currentMilliseconds())
            logger.error("Could not enqueue a job", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
            throw JobError(status: 503, code: "ServiceUnavailable", message: "The job could not be queued; try again")
        }
        logger.info("Job queued", metadata: ["job.id": "\(jobId)", "job.model": "\(request.model)", "trace.id": "\(traceHeader.map(AWSTrace.rootID) ?? "-")"])
        metrics.count(MetricCatalog.jobsSubmitted, model: request.model)
        return ClientMessage(type: .accepted, jobId: jobId, job: stored.view, duplicate: false)
    }

    /// A job of this client's (someone else's is "not found", as a missing one is).
    public func status(_ jobId: String, owner: String) async throws -> Job {
        guard let job = try await jobs.job(jobId), job.owner == owner else { throw JobError.notFound(jobId) }
        return job
    }

    /// Cancels a queued or running job; a running one stops at its next progress step.
    public func cancel(_ jobId: String, owner: String) async throws -> Job {
        if let cancelled = try await jobs.cancel(jobId, owner: owner, now: currentMilliseconds()) { return cancelled }
        let job = try await status(jobId, owner: owner)
        throw JobError.conflict("Job \(jobId) is \(job.state.rawValue) and can no longer be cancelled")
    }

    /// A short-lived download URL for a succeeded job's result, for its owner only.
    public func resultURL(_ jobId: String, owner: String) async throws -> ClientMessage {
        let job = try await status(jobId, owner: owner)
        guard job.state == .succeeded, let key = job.resultKey else {
            throw JobError.conflict("Job \(jobId) is \(job.state.rawValue); its result is available once it has SUCCEEDED")
        }
        let url = try await s3.presignedURL(.get, bucket: configuration.bucket, key: key, expiresIn: configuration.resultURLSeconds)
        return ClientMessage(type: .result, jobId: jobId, job: job.view, url: url, contentType: job.resultType, expiresIn: configuration.resultURLSeconds)
    }

    // MARK: Uploads

    /// Where a client may upload one input: a presigned POST form (for browsers) and a presigned PUT
    /// URL, both for a fresh key under the client's input prefix and limited in size.
    public func createUpload(owner: String, contentType: String?, fileName: String?) async throws -> UploadTarget {
        let presigner = try await s3.presigner()
        return try uploadTarget(presigner: presigner, owner: owner, contentType: contentType, fileName: fileName)
    }

    /// The signing part of `createUpload`, kept synchronous (the release compiler crashed splitting
    /// an async function that made these typed-throwing calls).
    private func uploadTarget(presigner: S3Presigner, owner: String, contentType: String?, fileName: String?) throws -> UploadTarget {
        let id = RandomUUID.lowercased()
        let name = Self.safeFileName(fileName ?? "input")
        let key = JobKeys.inputPrefix(owner: owner) + "\(id)/\(name)"
        let expires = 900
        var conditions: [PostPolicyCondition] = [.contentLengthRange(min: 1, max: configuration.uploadMaxBytes)]
        var fields: [(name: String, value: String)] = []
        if let contentType {
            // A form field the policy does not cover is refused ("Extra input fields"): sign it too.
            fields.append(("Content-Type", contentType))
            conditions.append(.equals(field: "Content-Type", value: contentType))
        } else {
            conditions.append(.startsWith(field: "Content-Type", prefix: ""))
        }
        let post = try presigner.presignedPost(bucket: configuration.bucket, key: key, fields: fields, conditions: conditions, expiresIn: expires)
        let put = try presigner.presignedURL(.put, bucket: configuration.bucket, key: key, expiresIn: expires, contentType: contentType)
        var formFields: [String: String] = [:]
        for field in post.fields { formFields[field.name] = field.value }
        return UploadTarget(key: key, putURL: put, post: .init(url: post.url, fields: formFields), maxBytes: configuration.uploadMaxBytes, expiresIn: expires)
    }

    /// Letters, digits, `.`, `-` and `_` of a client's file name (at most 100), so keys stay simple.
    static func safeFileName(_ name: String) -> String {
        let kept = String(String.UnicodeScalarView(name.unicodeScalars.filter { ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0) }.prefix(100)))
        return kept.isEmpty || kept.hasPrefix(".") ? "input" : kept
    }

    /// The job id an idempotency key maps to, per client.
    static func jobId(owner: String, idempotencyKey: String) -> String {
        "i-" + Hex.encode(SHA256Hasher.hash(Array("\(owner)\n\(idempotencyKey)".utf8))).prefix(32)
    }
}

/// Where to upload an input, returned by `POST /uploads`.
public struct UploadTarget: Codable, Sendable, Equatable {
    public struct Post: Codable, Sendable, Equatable {
        public var url: String
        public var fields: [String: String]
    }

    /// The object key to name as the job's `inputKey`.
    public var key: String
    public var putURL: String
    public var post: Post
    public var maxBytes: Int
    public var expiresIn: Int
}
