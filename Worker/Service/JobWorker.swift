import Logging
import MartletAWS
import MartletJobs
import MartletRuntime
import Synchronization

import Foundation

/// The GPU container worker: warms its models up, then long-polls the jobs queue with a fixed
/// number of job slots, and runs each job to exactly one result.
///
/// A job is claimed with a conditional write and held with heartbeats (the message's visibility
/// and the job's lease are extended together; the lease always ends before the message would
/// reappear, so a worker that dies leaves a job the next worker can claim). Progress goes to the
/// job record and to the client's connection; a cancel is noticed at the next progress step (the
/// last step, 100 %, is recorded by the write that completes the job, which a cancel makes fail). A
/// model error fails the attempt and lets the queue retry; the last attempt fails the job and
/// leaves its message to the dead-letter queue. `stop()` (SIGTERM) ends polling, lets jobs in
/// hand finish within the stop timeout, then hands the rest back.
public final class JobWorker: Sendable {
    let configuration: WorkerConfiguration
    let jobs: JobStore
    let sqs: SQSClient
    let s3: S3Client
    let notifier: ClientNotifier
    let catalog: ModelCatalog
    let logger: Logger
    let metrics: JobMetrics
    /// Runs after each job is settled (the worker's main writes its metrics out there).
    let afterJob: @Sendable () -> Void
    let status = WorkerStatus()
    let deletions: MessageDeletions
    let folders: WorkFolders
    private let state = Mutex(State())

    struct State {
        var stopping = false
        var receive: Task<[SQSMessage], any Error>?
        var running: [String: Task<Void, Never>] = [:]
        var slotFreed: AsyncStream<Void>.Continuation?
    }

    /// Where the worker's own tasks run (receiving, each job, settling): with an event loop's
    /// executor, a job's AWS calls never hop between threads. Nil: the global executor.
    let taskExecutor: (any TaskExecutor)?

    init(
        configuration: WorkerConfiguration, aws: AWSClient, catalog: ModelCatalog, logger: Logger, metrics: JobMetrics = JobMetrics(),
        taskExecutor: (any TaskExecutor)? = nil, afterJob: @escaping @Sendable () -> Void = {}
    ) throws {
        self.configuration = configuration
        self.taskExecutor = taskExecutor
        self.metrics = metrics
        self.afterJob = afterJob
        jobs = JobStore(dynamoDB: DynamoDBClient(aws), table: configuration.jobsTable)
        sqs = SQSClient(aws)
        deletions = MessageDeletions(sqs: sqs, queueURL: configuration.queueURL, logger: logger, taskExecutor: taskExecutor)
        s3 = S3Client(aws)
        folders = WorkFolders(in: configuration.workFolder)
        notifier = try ClientNotifier(webSocketEndpoint: configuration.webSocketEndpoint, aws: aws, logger: logger, metrics: metrics)
        self.catalog = catalog
        self.logger = logger
    }

    /// Warms up, then serves the queue until `stop()` and every job in hand has ended.
    func run() async throws {
        for name in catalog.names {
            let started = ContinuousClock.now
            try await catalog.model(named: name)?.warmUp()
            logger.info("Model ready", metadata: ["model": "\(name)", "warmup.ms": "\((ContinuousClock.now - started).milliseconds)"])
        }
        status.setReady(true)
        logger.info("Worker ready", metadata: ["worker.id": "\(configuration.workerID)", "slots": "\(configuration.slots)"])
        let (freed, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        state.withLock { $0.slotFreed = continuation }
        var slotEvents = freed.makeAsyncIterator()
        while !state.withLock({ $0.stopping }) {
            let free = configuration.slots - state.withLock { $0.running.count }
            if free <= 0 {
                await slotEvents.next()
                continue
            }
            let receive = Task(executorPreference: taskExecutor) {
                try await self.sqs.receiveMessages(
                    queueURL: self.configuration.queueURL, maxMessages: min(free, 10), waitTime: self.configuration.pollWaitSeconds, visibilityTimeout: self.configuration.visibilityTimeout,
                    systemAttributes: ["ApproximateReceiveCount"], messageAttributes: []
                )
            }
            guard state.withLock({ state in
                if state.stopping { return false }
                state.receive = receive
                return true
            }) else {
                receive.cancel()
                break
            }
            let messages: [SQSMessage]
            do {
                messages = try await receive.value
            } catch {
                if state.withLock({ $0.stopping }) { break }
                logger.warning("Receive failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            state.withLock { $0.receive = nil }
            for message in messages { start(message) }
        }
        // Stopping: wait for the jobs in hand.
        while let next = state.withLock({ $0.running.values.first }) { await next.value }
        await deletions.flush()
        folders.removeAll()
        status.setReady(false)
        logger.info("Worker stopped")
    }

    /// Stops taking work. Jobs in hand may finish until `stopTimeout`; then they are handed back.
    func stop() {
        let (receive, running) = state.withLock { state -> (Task<[SQSMessage], any Error>?, Int) in
            state.stopping = true
            return (state.receive, state.running.count)
        }
        receive?.cancel()
        status.setStopping()
        logger.info("Stopping: no new jobs", metadata: ["jobs.in.hand": "\(running)"])
        let timeout = configuration.stopTimeout
        Task {
            try? await Task.sleep(for: timeout)
            let tasks = self.state.withLock { Array($0.running.values) }
            if !tasks.isEmpty { self.logger.warning("Stop timeout: handing jobs back", metadata: ["jobs": "\(tasks.count)"]) }
            for task in tasks { task.cancel() }
        }
    }

    private func start(_ message: SQSMessage) {
        let key = message.messageID + message.receiptHandle.suffix(8)
        let task = Task(executorPreference: taskExecutor) {
            await self.process(message)
            let continuation = self.state.withLock { state in
                state.running[key] = nil
                return state.slotFreed
            }
            continuation?.yield()
        }
        state.withLock { $0.running[key] = task }
    }

    // MARK: One message

    func process(_ message: SQSMessage) async {
        guard let body = JobQueueMessage(body: message.body) else {
            logger.error("Dropping a message that is not a job", metadata: ["message.id": "\(message.messageID)"])
            await deleteMessage(message)
            return
        }
        let jobId = body.jobId
        var logger = self.logger
        logger[metadataKey: "job.id"] = "\(jobId)"
        let now = currentMilliseconds()
        let job: Job
        do {
            guard let claimed = try await jobs.claim(jobId, workerId: configuration.workerID, now: now, leaseUntil: leaseEnd(from: now)) else {
                await settleUnclaimable(jobId, message: message, logger: logger)
                return
            }
            job = claimed
        } catch {
            logger.warning("Could not claim a job; it will be retried", metadata: ["error": "\(error)"])
            return
        }
        // The job continues the trace of the request that submitted it: in its logs, on its AWS calls
        // and on its result.
        let trace = message.traceHeader ?? job.traceHeader
        if let trace { logger[metadataKey: "trace.id"] = "\(AWSTrace.rootID(trace))" }
        await AWSTrace.$header.withValue(trace) {
            await self.serve(job, message: message, startedAt: now, logger: logger)
        }
    }

    private func serve(_ job: Job, message: SQSMessage, startedAt now: Int64, logger: Logger) async {
        let jobId = job.jobId
        let receiveCount = message.receiveCount ?? job.attempts
        metrics.count(MetricCatalog.jobsStarted, model: job.model)
        metrics.time(MetricCatalog.queueWait, model: job.model, milliseconds: now - job.createdAt)
        logger.info("Job started", metadata: ["job.model": "\(job.model)", "attempt": "\(job.attempts)", "receive.count": "\(receiveCount)"])
        status.begin(jobId, model: job.model)
        defer { status.end(jobId) }

        let outcome = await runHeld(job, message: message, logger: logger)
        // Recording the outcome must happen even when this task was cancelled (a stop past its
        // timeout): it runs in a task of its own, which cancellation does not reach.
        await Task(executorPreference: taskExecutor) {
            await self.settle(outcome, job: job, message: message, receiveCount: receiveCount, startedAt: now, logger: logger)
        }.value
        afterJob()
    }

    private func settle(_ outcome: Outcome, job: Job, message: SQSMessage, receiveCount: Int, startedAt now: Int64, logger: Logger) async {
        let jobId = job.jobId
        let finishedAt = currentMilliseconds()
        switch outcome {
        case .succeeded(let result, let summary, let resultType):
            if let done = try? await jobs.succeed(job, workerId: configuration.workerID, resultKey: result, resultType: resultType, summary: summary, now: finishedAt) {
                metrics.count(MetricCatalog.jobsSucceeded, model: job.model)
                metrics.time(MetricCatalog.modelTime, model: job.model, milliseconds: finishedAt - now)
                metrics.time(MetricCatalog.endToEndTime, model: job.model, milliseconds: finishedAt - job.createdAt)
                logger.info("Job succeeded", metadata: ["result.key": "\(result)", "duration.ms": "\(finishedAt - now)"])
                let url = try? await s3.presignedURL(.get, bucket: configuration.bucket, key: result, expiresIn: configuration.resultURLSeconds)
                await notifier.send(
                    ClientMessage(type: .result, jobId: jobId, job: done.view, url: url, contentType: resultType, expiresIn: configuration.resultURLSeconds),
                    to: done.connectionId
                )
            } else {
                logger.warning("Job was cancelled or taken over before it could be completed; its result is discarded")
            }
            await deleteMessage(message)
        case .failed(let error):
            let final = !error.isRetryable || receiveCount >= configuration.maxAttempts
            if let failed = try? await jobs.fail(job, workerId: configuration.workerID, error: error.message, final: final, now: finishedAt) {
                metrics.count(final ? MetricCatalog.jobsFailed : MetricCatalog.jobsRetried, model: job.model)
                if final {
                    logger.error("Job failed", metadata: ["error": "\(error.message)", "attempts": "\(failed.attempts)"])
                    await notifier.send(ClientMessage(type: .failed, jobId: jobId, job: failed.view, message: error.message), to: failed.connectionId)
                } else {
                    logger.warning("Attempt failed; the queue will retry it", metadata: ["error": "\(error.message)"])
                    await notifier.send(ClientMessage(type: .status, jobId: jobId, job: failed.view, message: failed.message), to: failed.connectionId)
                }
            }
            // Back to the queue: retried, or (after the last attempt) moved to the dead-letter queue by the redrive policy.
            await releaseMessage(message)
        case .cancelled:
            logger.info("Job cancelled by its owner")
            await deleteMessage(message)
        case .lost:
            logger.warning("Lost the job's lease; another worker holds it")
        case .handedBack:
            _ = try? await jobs.release(jobId, workerId: configuration.workerID, now: finishedAt)
            await releaseMessage(message)
            logger.info("Job handed back for another worker")
        }
    }

    enum Outcome {
        case succeeded(resultKey: String, summary: String?, contentType: String)
        case failed(ModelError)
        case cancelled
        case lost
        case handedBack
    }

    /// Runs the model while heartbeats hold the job; returns how it ended.
    private func runHeld(_ job: Job, message: SQSMessage, logger: Logger) async -> Outcome {
        let folder: String
        do {
            folder = try folders.take()
        } catch {
            return .failed(ModelError(message: "Cannot make a work folder in \(configuration.workFolder): \(error)", isRetryable: true))
        }
        defer { folders.giveBack(folder) }
        let hold = HoldState()
        return await withTaskGroup(of: Outcome?.self) { group in
            // Heartbeats: message visibility first, then the lease (never a lease past the visibility).
            group.addTask {
                let interval = Duration.seconds(max(1, self.configuration.visibilityTimeout / 3))
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    if Task.isCancelled { return nil }
                    do {
                        try await self.sqs.changeMessageVisibility(
                            queueURL: self.configuration.queueURL, receiptHandle: message.receiptHandle, visibilityTimeout: self.configuration.visibilityTimeout
                        )
                        let now = currentMilliseconds()
                        let result = try await self.jobs.heartbeat(job.jobId, workerId: self.configuration.workerID, now: now, leaseUntil: self.leaseEnd(from: now))
                        if result != .held {
                            hold.withLock { $0 = result }
                            return result == .cancelled ? .cancelled : .lost
                        }
                    } catch {
                        logger.warning("Heartbeat failed", metadata: ["error": "\(error)"])
                    }
                }
                return nil
            }
            group.addTask {
                do {
                    return try await self.execute(job, folder: folder, hold: hold, logger: logger)
                } catch is CancellationError {
                    switch hold.withLock({ $0 }) {
                    case .cancelled: return .cancelled
                    case .lost: return .lost
                    case .held: return .handedBack
                    }
                } catch let error as ModelError {
                    return .failed(error)
                } catch {
                    return .failed(ModelError(message: "\(error)", isRetryable: true))
                }
            }
            var outcome: Outcome = .lost
            while let next = await group.next() {
                guard let next else { continue }
                outcome = next
                group.cancelAll()
                // The model's own answer wins over the heartbeat's, which only asked it to stop.
                if case .cancelled = next { continue }
                if case .lost = next { continue }
                break
            }
            return outcome
        }
    }

    /// Downloads the input, runs the model with progress, uploads the result.
    private func execute(_ job: Job, folder: String, hold: HoldState, logger: Logger) async throws -> Outcome {
        guard let model = catalog.model(named: job.model) else {
            throw ModelError(message: "Unknown model \"\(job.model)\"; this worker runs \(catalog.names.joined(separator: ", "))", isRetryable: false)
        }
        var inputPath: String?
        if let key = job.inputKey {
            let path = (folder as NSString).appendingPathComponent("input")
            do {
                _ = try await s3.download(bucket: configuration.bucket, key: key, to: path)
            } catch let error as AWSServiceError where error.status == 404 {
                throw ModelError(message: "The input object \(key) does not exist", isRetryable: false)
            }
            inputPath = path
        }
        let connectionId = job.connectionId
        // Each step goes to the client at once and to the record, whose conditional write is also
        // how a cancel is noticed. The last step (100 %) is recorded by the job's completion a moment
        // later instead, in the same write that ends it (which a cancel makes fail, so nothing is lost).
        let progress: @Sendable (Int, String) async throws -> Void = { percent, text in
            try Task.checkCancellation()
            if percent < 100 {
                let result = try await self.jobs.progress(job.jobId, workerId: self.configuration.workerID, percent: percent, message: text, now: currentMilliseconds())
                if result != .held {
                    hold.withLock { $0 = result }
                    throw CancellationError()
                }
            }
            self.status.progress(job.jobId, percent)
            await self.notifier.send(ClientMessage(type: .progress, jobId: job.jobId, progress: percent, message: text), to: connectionId)
        }
        let result = try await model.run(
            ModelJob(jobID: job.jobId, model: job.model, parameters: job.parameters, inputPath: inputPath, workFolder: folder), progress: progress
        )
        try Task.checkCancellation()
        var status = stat()
        guard stat(result.path, &status) == 0 else {
            throw ModelError(message: "The model's result \(result.path) cannot be read: errno \(errno)", isRetryable: true)
        }
        let size = Int64(status.st_size)
        let key = JobKeys.result(owner: job.owner, jobId: job.jobId, fileName: (result.path as NSString).lastPathComponent)
        try await s3.putObject(
            bucket: configuration.bucket, key: key, body: .file(path: result.path, length: size), contentType: result.contentType,
            metadata: (job.traceHeader ?? AWSTrace.header).map { ["trace-id": AWSTrace.rootID($0)] } ?? [:]
        )
        return .succeeded(resultKey: key, summary: result.summary, contentType: result.contentType)
    }

    /// A message whose job we could not claim: finished or cancelled jobs' messages are deleted, a
    /// failed job's goes on to the dead-letter queue, and a job another live worker holds is that
    /// worker's (this copy is a duplicate delivery).
    private func settleUnclaimable(_ jobId: String, message: SQSMessage, logger: Logger) async {
        let job = try? await jobs.job(jobId)
        switch job?.state {
        case .failed?:
            await releaseMessage(message)
        case .running?:
            logger.info("Duplicate delivery of a job another worker holds; dropping this copy")
            await deleteMessage(message)
        case nil:
            logger.warning("Dropping a message for a job that does not exist")
            await deleteMessage(message)
        default:
            await deleteMessage(message)
        }
    }

    private func leaseEnd(from now: Int64) -> Int64 {
        // Ends before the message could reappear, so a redelivered message always finds the lease over.
        now + Int64(configuration.visibilityTimeout) * 1000 - min(5000, Int64(configuration.visibilityTimeout) * 300)
    }

    /// Deletes a settled message (batched with others: see `MessageDeletions`).
    private func deleteMessage(_ message: SQSMessage) async {
        deletions.delete(message.receiptHandle)
    }

    private func releaseMessage(_ message: SQSMessage) async {
        try? await sqs.changeMessageVisibility(queueURL: configuration.queueURL, receiptHandle: message.receiptHandle, visibilityTimeout: 0)
    }
}

/// What heartbeats and progress writes last learned about the job's hold.
final class HoldState: Sendable {
    private let value = Mutex<JobStore.Hold>(.held)
    func withLock<T>(_ body: (inout JobStore.Hold) -> T) -> T { value.withLock { body(&$0) } }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// The folders jobs run in: each job has one to itself, and a finished job's folder is emptied and
/// handed to the next job rather than removed (on a disk mounted with `discard`, removing a
/// directory waits for the device, which cost more than a no-op job's whole run). A folder that
/// cannot be emptied is removed instead. At most one folder per job slot exists at a time.
final class WorkFolders: Sendable {
    private let parent: String
    private let free = Mutex<[String]>([])

    init(in parent: String) { self.parent = parent }

    /// An empty folder for one job.
    func take() throws -> String {
        if let folder = free.withLock({ $0.popLast() }) { return folder }
        let folder = (parent as NSString).appendingPathComponent("martlet-job-\(RandomUUID.lowercased().prefix(12))")
        try WorkFolder.create(folder)
        return folder
    }

    /// Empties a job's folder for the next job (or removes it when that fails).
    func giveBack(_ folder: String) {
        if WorkFolder.empty(folder) {
            free.withLock { $0.append(folder) }
        } else {
            WorkFolder.remove(folder)
        }
    }

    /// Removes the folders kept for later jobs (when the worker stops).
    func removeAll() {
        for folder in free.withLock({ folders in defer { folders = [] }; return folders }) { WorkFolder.remove(folder) }
    }
}

/// A job's folder, made and emptied with plain system calls (Foundation's walk and checks cost
/// more than the no-op model's whole run); anything unusual inside goes to FileManager.
enum WorkFolder {
    static func create(_ path: String) throws {
        if mkdir(path, 0o700) == 0 { return }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Removes the folder's files; false when something is left (a subfolder, say) or it is gone.
    static func empty(_ path: String) -> Bool {
        guard let directory = opendir(path) else { return false }
        var leftovers = false
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." { continue }
            if unlink(path + "/" + name) != 0 { leftovers = true }
        }
        closedir(directory)
        return !leftovers
    }

    static func remove(_ path: String) {
        if !empty(path) || rmdir(path) != 0 { try? FileManager.default.removeItem(atPath: path) }
    }
}
