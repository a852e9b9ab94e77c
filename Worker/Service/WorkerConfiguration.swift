import MartletJobs

import Foundation

/// The worker's configuration, read once from its environment (the ECS task definition, or `martlet local`).
///
/// Variables, besides the application's (`JOBS_TABLE`, `JOBS_QUEUE_URL`, `BUCKET`, `WEBSOCKET_ENDPOINT`):
/// - `WORKER_SLOTS`: jobs run at once (default 1: one GPU).
/// - `WORKER_ID`: how the worker names itself in job records (default host name and process id).
/// - `HEALTH_PORT`: the health endpoint's port (default 8080; 0 picks a free one).
/// - `VISIBILITY_TIMEOUT`: seconds a received job stays hidden without a heartbeat (default 60; heartbeats every third of it).
/// - `MAX_ATTEMPTS`: attempts per job; equal to the queue's `maxReceiveCount` (default 3).
/// - `STOP_TIMEOUT`: seconds to finish the job in hand after SIGTERM before handing it back (default 100; ECS waits 120).
/// - `WORK_FOLDER`: where jobs' inputs and outputs go while they run (default the temporary folder).
/// - `RESULT_URL_SECONDS`: how long the download URL sent to clients lives (default 900).
/// - `POLL_WAIT_SECONDS`: the long poll's wait (default 20, SQS's longest).
public struct WorkerConfiguration: Sendable {
    public var jobsTable: String
    public var queueURL: String
    public var bucket: String
    public var webSocketEndpoint: String?
    public var slots: Int
    public var workerID: String
    public var healthPort: Int
    public var visibilityTimeout: Int
    public var maxAttempts: Int
    public var stopTimeout: Duration
    public var workFolder: String
    public var resultURLSeconds: Int
    public var pollWaitSeconds: Int

    public init(environment: [String: String]) throws(ConfigurationError) {
        let variables = EnvironmentReader(environment)
        jobsTable = try variables.required("JOBS_TABLE")
        queueURL = try variables.required("JOBS_QUEUE_URL")
        bucket = try variables.required("BUCKET")
        webSocketEndpoint = variables.optional("WEBSOCKET_ENDPOINT")
        slots = try variables.number("WORKER_SLOTS", default: 1, in: 1...64)
        workerID = variables.optional("WORKER_ID") ?? "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        healthPort = try variables.number("HEALTH_PORT", default: 8080, in: 0...65535)
        visibilityTimeout = try variables.number("VISIBILITY_TIMEOUT", default: 60, in: 3...43_200)
        maxAttempts = try variables.number("MAX_ATTEMPTS", default: 3, in: 1...1000)
        stopTimeout = .seconds(try variables.number("STOP_TIMEOUT", default: 100, in: 0...3600))
        workFolder = variables.optional("WORK_FOLDER") ?? NSTemporaryDirectory()
        resultURLSeconds = try variables.number("RESULT_URL_SECONDS", default: 900, in: 1...604_800)
        pollWaitSeconds = try variables.number("POLL_WAIT_SECONDS", default: 20, in: 0...20)
    }
}
