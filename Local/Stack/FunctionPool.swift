import Foundation
import Logging
import MartletRuntime
import NIOCore
import NIOPosix
import Synchronization

/// Lambda's execution environments for one function: real `bootstrap` processes, each behind its
/// own Runtime API and serving one invocation at a time. A warm environment is reused; a new one
/// starts when all are busy, up to the function's concurrency (then requests wait, and beyond
/// `maxQueued` they are throttled); environments idle longer than `idleTimeout` are stopped; one
/// that crashes or times out is replaced on the next request.
public final class FunctionPool: Sendable {
    public let configuration: FunctionConfiguration
    /// Environments at most (reserved concurrency, or a local default).
    public let maxEnvironments: Int
    public let idleTimeout: Duration
    public let maxQueued: Int
    let logger: Logger
    let printLine: @Sendable (String) -> Void
    private let state = Mutex(State())
    private let spawns: AsyncStream<Void>.Continuation
    private let spawnRequests: AsyncStream<Void>

    struct Job: Sendable {
        var request: RuntimeEnvironment.Request
        var streamTo: (@Sendable (ByteBuffer) async -> Void)?
        var continuation: CheckedContinuation<InvocationReport, Never>
    }

    struct Waiter {
        var id: Int
        var since: ContinuousClock.Instant
        var continuation: CheckedContinuation<Job?, Never>
    }

    struct State {
        var pending: [Job] = []
        var idle: [Waiter] = []
        var environments = 0
        var nextWaiterID = 0
        var stopped = false
        var invocations = 0
        var coldStarts = 0
        var errors = 0
    }

    /// Counts for the live view: invocations, cold starts, errors, environments now.
    public struct Statistics: Sendable, Codable {
        public var invocations: Int
        public var coldStarts: Int
        public var errors: Int
        public var environments: Int
        public var busy: Int
        public var queued: Int
    }

    public init(
        configuration: FunctionConfiguration, maxEnvironments: Int, idleTimeout: Duration = .seconds(300), maxQueued: Int = 1000, logger: Logger,
        printLine: @escaping @Sendable (String) -> Void
    ) {
        self.configuration = configuration
        self.maxEnvironments = max(1, maxEnvironments)
        self.idleTimeout = idleTimeout
        self.maxQueued = maxQueued
        self.logger = logger
        self.printLine = printLine
        (spawnRequests, spawns) = AsyncStream.makeStream(of: Void.self)
    }

    public var statistics: Statistics {
        state.withLock {
            Statistics(
                invocations: $0.invocations, coldStarts: $0.coldStarts, errors: $0.errors, environments: $0.environments,
                busy: $0.environments - $0.idle.count, queued: $0.pending.count
            )
        }
    }

    /// Runs environments as requests need them until cancelled; stops every process on the way out.
    public func run() async {
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    // Reaper: idle environments past the idle timeout are told to stop.
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: .seconds(1)) } catch { return }
                        let expired = self.state.withLock { state -> [Waiter] in
                            let now = ContinuousClock.now
                            let expired = state.idle.filter { now - $0.since > self.idleTimeout }
                            state.idle.removeAll { now - $0.since > self.idleTimeout }
                            return expired
                        }
                        for waiter in expired { waiter.continuation.resume(returning: nil) }
                    }
                }
                for await _ in spawnRequests {
                    // Each environment's tasks run on one event loop: handing it work, the invocation and its
                    // answer resume there, with no hop through the global executor's threads.
                    group.addTask(executorPreference: EventLoopTaskExecutor(MultiThreadedEventLoopGroup.singleton.next())) {
                        await self.runEnvironment()
                    }
                }
            }
        } onCancel: {
            stop()
        }
        stop()
    }

    /// Stops taking work: idle environments end, waiting requests are refused, no new environment starts.
    private func stop() {
        let (idle, pending) = state.withLock { state in
            state.stopped = true
            defer {
                state.idle = []
                state.pending = []
            }
            return (state.idle, state.pending)
        }
        spawns.finish()
        for waiter in idle { waiter.continuation.resume(returning: nil) }
        for job in pending { job.continuation.resume(returning: Self.throttled(job.request.requestID)) }
    }

    /// Stops accepting work (the `run` task must also be cancelled).
    public func shutdown() { spawns.finish() }

    /// Invokes the function once; waits for a free environment. A streamed response goes to
    /// `streamTo` as it arrives (see ``FunctionInstance/invoke(_:streamTo:)``).
    public func invoke(_ request: RuntimeEnvironment.Request, streamTo: (@Sendable (ByteBuffer) async -> Void)? = nil) async -> InvocationReport {
        let report = await withCheckedContinuation { continuation in
            let job = Job(request: request, streamTo: streamTo, continuation: continuation)
            enum Action { case handTo(Waiter), spawn, wait, refuse }
            let action = state.withLock { state -> Action in
                if state.stopped || state.pending.count >= maxQueued { return .refuse }
                state.invocations += 1
                if !state.idle.isEmpty { return .handTo(state.idle.removeLast()) }
                state.pending.append(job)
                if state.environments < maxEnvironments {
                    state.environments += 1
                    state.coldStarts += 1
                    return .spawn
                }
                return .wait
            }
            switch action {
            case .handTo(let waiter): waiter.continuation.resume(returning: job)
            case .spawn: spawns.yield()
            case .wait: break
            case .refuse: continuation.resume(returning: Self.throttled(request.requestID))
            }
        }
        if !report.outcome.isSuccess { state.withLock { $0.errors += 1 } }
        return report
    }

    static func throttled(_ requestID: String) -> InvocationReport {
        InvocationReport(
            requestID: requestID,
            outcome: .platformError(.init(errorType: "TooManyRequestsException", errorMessage: "Rate Exceeded.")),
            duration: .zero, initDuration: nil, memorySize: 0, maxMemoryUsedMB: 0
        )
    }

    /// The next job for an environment's slot: a pending one, or wait (nil when it should stop, or
    /// when the waiting task is cancelled).
    private func nextJob() async -> Job? {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let job = state.withLock { state -> Job?? in
                    if let job = (state.pending.isEmpty ? nil : state.pending.removeFirst()) { return .some(job) }
                    if state.stopped || Task.isCancelled { return .some(nil) }
                    state.idle.append(Waiter(id: id, since: .now, continuation: continuation))
                    return nil
                }
                if let job { continuation.resume(returning: job) }
            }
        } onCancel: {
            let waiter = state.withLock { state in state.idle.firstIndex { $0.id == id }.map { state.idle.remove(at: $0) } }
            waiter?.continuation.resume(returning: nil)
        }
    }

    /// Runs one invocation on the environment, with its START, END and REPORT lines.
    private func serve(_ job: Job, on instance: FunctionInstance) async -> InvocationReport {
        printLine(InvocationReportLines.start(job.request.requestID))
        let report = await instance.invoke(job.request, streamTo: job.streamTo)
        if case .platformError(let error) = report.outcome {
            printLine("\(WallClock.iso8601(milliseconds: WallClock.nowMilliseconds)) \(error.errorMessage)")
        }
        printLine(report.endLine)
        printLine(report.reportLine)
        job.continuation.resume(returning: report)
        return report
    }

    private func runEnvironment() async {
        let output = ProcessOutput.lines { [printLine] line in printLine(line) }
        let first = state.withLock { ($0.pending.isEmpty ? nil : $0.pending.removeFirst()) }
        do {
            try await FunctionInstance.with(configuration, output: output, logger: logger) { instance in
                // One slot per invocation the process takes at once (AWS_LAMBDA_MAX_CONCURRENCY; 1 on standard Lambda).
                await withTaskGroup(of: Void.self) { group in
                    for slot in 0..<configuration.maxConcurrency {
                        group.addTask {
                            var job = slot == 0 ? first : await self.nextJob()
                            while let current = job {
                                let report = await self.serve(current, on: instance)
                                job = nil
                                // A timeout or crash ends the environment, as on Lambda: the next request gets a fresh one.
                                if case .platformError = report.outcome { return }
                                guard instance.isAlive, !Task.isCancelled else { return }
                                job = await self.nextJob()
                            }
                        }
                    }
                    // When one slot ends the environment, the others stop waiting for work.
                    for await _ in group where !instance.isAlive { group.cancelAll() }
                }
            }
        } catch {
            logger.error("Could not start an environment", metadata: ["function": "\(configuration.name)", "error": "\(error)"])
            // The environment never started, so its first job was not served.
            if let job = first {
                job.continuation.resume(returning: InvocationReport(
                    requestID: job.request.requestID, outcome: .platformError(.init(errorType: "Runtime.Unavailable", errorMessage: "\(error)")),
                    duration: .zero, initDuration: nil, memorySize: configuration.memorySize, maxMemoryUsedMB: 0
                ))
            }
        }
        // This environment is gone: if work is waiting and nobody can take it, start another.
        let respawn = state.withLock { state -> Bool in
            state.environments -= 1
            if !state.pending.isEmpty, !state.stopped, state.environments < maxEnvironments {
                state.environments += 1
                state.coldStarts += 1
                return true
            }
            return false
        }
        if respawn { spawns.yield() }
    }
}
