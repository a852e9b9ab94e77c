import Foundation
import Logging
import MartletRuntime
import NIOCore
import NIOPosix
import Synchronization

/// One execution environment of a function: a Runtime API server of its own and the real runtime
/// process behind it, serving one invocation at a time as Lambda does.
///
/// ```swift
/// try await FunctionInstance.with(configuration, logger: logger) { instance in
///     let report = await instance.invoke(RuntimeEnvironment.Request(event: event, timeout: .seconds(3)))
///     print(report.reportLine)
/// }
/// ```
public final class FunctionInstance: Sendable {
    public let configuration: FunctionConfiguration
    public let environment: RuntimeEnvironment
    private let process: RuntimeProcess
    /// When the runtime process was started.
    public let startedAt: ContinuousClock.Instant
    private let state = Mutex(InstanceState())

    private struct InstanceState {
        var coldStartReported = false
    }

    private init(configuration: FunctionConfiguration, environment: RuntimeEnvironment, process: RuntimeProcess, startedAt: ContinuousClock.Instant) {
        self.configuration = configuration
        self.environment = environment
        self.process = process
        self.startedAt = startedAt
    }

    /// Starts the Runtime API server and the runtime process, runs `body`, then stops both.
    /// - Parameters:
    ///   - output: where the process's standard output and error go (file descriptors).
    ///   - eventLoopGroup: where the Runtime API server runs (a one-thread group puts it on the caller's loop).
    public static func with<Result: Sendable>(
        _ configuration: FunctionConfiguration,
        output: ProcessOutput = .inherit(standardOutput: 2, standardError: 2),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        _ body: (FunctionInstance) async throws -> Result
    ) async throws -> Result {
        if let problem = configuration.problem { throw LocalError.invalidConfiguration(problem) }
        let environment = RuntimeEnvironment(
            functionName: configuration.name, region: configuration.region, maxConcurrency: configuration.maxConcurrency
        )
        let server = RuntimeAPIServer(environment: environment, eventLoopGroup: eventLoopGroup, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            let (addresses, continuation) = AsyncStream.makeStream(of: String.self)
            group.addTask { try await server.run { continuation.yield($0) } }
            var iterator = addresses.makeAsyncIterator()
            guard let address = await iterator.next() else { throw LocalError.serverFailed }
            let startedAt = ContinuousClock.now
            let process = try RuntimeProcess.spawn(
                command: configuration.command,
                environment: configuration.processEnvironment(runtimeAPI: address, inherited: ProcessInfo.processInfo.environment),
                workingDirectory: configuration.taskRoot ?? FunctionConfiguration.folder(of: configuration.command[0]),
                output: output
            ) { status in
                environment.close { requestID in .runtimeExited(requestID: requestID, status: status) }
            }
            let instance = FunctionInstance(configuration: configuration, environment: environment, process: process, startedAt: startedAt)
            do {
                // Cancelled (Ctrl-C, SIGTERM): ask the runtime to stop, which also ends an invocation in flight.
                let result = try await withTaskCancellationHandler {
                    try await body(instance)
                } onCancel: {
                    if process.exitStatus == nil { Foundation.kill(process.id, SIGTERM) }
                }
                // Let the runtime finish what it does after its last answer (writing its metrics) until
                // it asks for the next invocation, as Lambda would before freezing it.
                await withTaskGroup(of: Void.self) { wait in
                    wait.addTask { _ = await environment.waitUntilReady() }
                    wait.addTask { try? await Task.sleep(for: .milliseconds(300)) }
                    await wait.next()
                    wait.cancelAll()
                }
                await process.terminate()
                group.cancelAll()
                return result
            } catch {
                await process.terminate()
                group.cancelAll()
                throw error
            }
        }
    }

    /// The process id of the runtime.
    public var processID: Int32 { process.id }

    /// How the runtime process ended, once it has.
    public var exitStatus: ProcessExitStatus? { process.exitStatus }

    /// Runs one invocation: waits for the runtime to be ready (up to Lambda's 10 s init limit), enforces
    /// the timeout by killing the process, and measures it as Lambda's `REPORT` line does.
    /// The function's configured timeout applies, whatever `request.timeout` says.
    ///
    /// A response the runtime streams is handed to `stream` chunk by chunk as it arrives (without
    /// `stream`, it is collected); the report comes when the stream ends, within the same timeout.
    public func invoke(_ request: RuntimeEnvironment.Request, streamTo stream: (@Sendable (ByteBuffer) async -> Void)? = nil) async -> InvocationReport {
        var configured = request
        configured.timeout = configuration.timeout
        let request = configured
        let environment = self.environment
        let readiness = await environment.waitUntilReady(timeout: LambdaLimits.initTimeout)
        let initDuration = takeInitDuration()
        switch readiness {
        case .some(.ready):
            break
        case .some(.initError(let body, let errorType)):
            return report(request, outcome: .initError(body: body, errorType: errorType), duration: .zero, initDuration: initDuration)
        case .some(.closed):
            let status = await process.waitForExit()
            let outcome = InvocationOutcome.platformError(FunctionError(
                errorType: "Runtime.ExitError",
                errorMessage: "RequestId: \(request.requestID) Error: Runtime exited without providing a reason (\(status))"
            ))
            return report(request, outcome: outcome, duration: .zero, initDuration: initDuration)
        case .none:
            await process.kill()
            let outcome = InvocationOutcome.platformError(FunctionError(
                errorType: "Runtime.InitTimeout",
                errorMessage: "RequestId: \(request.requestID) Error: Init phase exceeded \(DurationFormat.seconds(LambdaLimits.initTimeout)) seconds"
            ))
            return report(request, outcome: outcome, duration: .zero, initDuration: initDuration)
        }

        let start = ContinuousClock.now
        let slot = InvocationSlot()
        // The timeout is a timer on an event loop, not a task sleeping beside the invocation: no task
        // to start and cancel for every invocation.
        let timeout = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(request.timeout)) {
            slot.expiry.withLock { $0 = Task { await self.expire(request, slot: slot) } }
        }
        var outcome = await environment.invoke(request)
        if case .streamed(let response) = outcome {
            slot.response.withLock { $0 = response }
            outcome = await Self.consume(response, into: stream)
        }
        timeout.cancel()
        // Timed out: the report comes once the process is gone, so the next invocation gets a fresh one.
        if let expiry = slot.expiry.withLock({ $0 }) { await expiry.value }
        var finalOutcome = outcome
        // A process that died mid-invocation: report how, once its exit status is known.
        if case .platformError(let error) = outcome, error.errorType == "Runtime.ExitError" {
            let status = await process.waitForExit()
            finalOutcome = .runtimeExited(requestID: request.requestID, status: status)
        }
        return report(request, outcome: finalOutcome, duration: ContinuousClock.now - start, initDuration: initDuration)
    }

    /// Reads a streamed response to its end: to `stream` as it arrives, or into one buffer.
    static func consume(_ response: StreamedResponse, into stream: (@Sendable (ByteBuffer) async -> Void)?) async -> InvocationOutcome {
        var collected = ByteBuffer()
        do {
            for try await chunk in response.chunks {
                if let stream {
                    await stream(chunk)
                } else {
                    var chunk = chunk
                    collected.writeBuffer(&chunk)
                }
            }
            return .success(body: collected, contentType: response.contentType)
        } catch let ended as StreamedResponseError {
            return ended.outcome
        } catch {
            return .platformError(FunctionError(errorType: "Runtime.StreamError", errorMessage: "\(error)"))
        }
    }

    /// Waits until the output the runtime has written so far has reached the `.lines` sink.
    public func outputSettled() async { await process.outputSettled() }

    /// Whether the process is still serving.
    public var isAlive: Bool { process.exitStatus == nil }

    private func takeInitDuration() -> Duration? {
        state.withLock { state in
            guard !state.coldStartReported else { return nil }
            state.coldStartReported = true
            return (environment.firstPollAt ?? .now) - startedAt
        }
    }

    private func report(_ request: RuntimeEnvironment.Request, outcome: InvocationOutcome, duration: Duration, initDuration: Duration?) -> InvocationReport {
        InvocationReport(
            requestID: request.requestID, outcome: outcome, duration: duration, initDuration: initDuration,
            memorySize: configuration.memorySize, maxMemoryUsedMB: process.peakMemoryMB
        )
    }

    /// Ends an invocation that ran past its timeout, as Lambda does: its caller gets the timeout
    /// outcome, and the process is killed.
    private func expire(_ request: RuntimeEnvironment.Request, slot: InvocationSlot) async {
        let timedOut = InvocationOutcome.timedOut(requestID: request.requestID, after: request.timeout)
        for _ in 0..<3 {
            if environment.complete(request.requestID, with: timedOut) {
                await process.kill()
                return
            }
            // Streaming: the invocation left the environment when its stream began.
            if let response = slot.response.withLock({ $0 }) {
                if response.finish(StreamedResponseError(outcome: timedOut)) { await process.kill() }
                return
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// The streamed response of an invocation in flight, once its stream has begun, and the task
/// ending it when it runs past its timeout.
private final class InvocationSlot: Sendable {
    let response = Mutex<StreamedResponse?>(nil)
    let expiry = Mutex<Task<Void, Never>?>(nil)
}

/// What `martlet invoke` and the pool report for each invocation, as Lambda's `REPORT` line does.
public struct InvocationReport: Sendable {
    public var requestID: String
    public var outcome: InvocationOutcome
    public var duration: Duration
    /// Set on the invocation that found a cold environment.
    public var initDuration: Duration?
    public var memorySize: Int
    public var maxMemoryUsedMB: Int

    /// Billed in 1 ms steps; on-demand functions are billed for init too.
    public var billedDuration: Int {
        let total = duration.milliseconds + (initDuration?.milliseconds ?? 0)
        return max(1, Int(total.rounded(.up)))
    }

    /// `START RequestId: … Version: $LATEST`
    public var startLine: String { InvocationReportLines.start(requestID) }

    /// `END RequestId: …`
    public var endLine: String { "END RequestId: \(requestID)" }

    /// `REPORT RequestId: …\tDuration: … ms\tBilled Duration: … ms\tMemory Size: … MB\tMax Memory Used: … MB\tInit Duration: … ms`
    public var reportLine: String {
        var line = "REPORT RequestId: \(requestID)\tDuration: \(DurationFormat.milliseconds(duration)) ms\t"
            + "Billed Duration: \(billedDuration) ms\tMemory Size: \(memorySize) MB\tMax Memory Used: \(maxMemoryUsedMB) MB"
        if let initDuration { line += "\tInit Duration: \(DurationFormat.milliseconds(initDuration)) ms" }
        if case .platformError(let error) = outcome, error.errorType == "Sandbox.Timedout" { line += "\tStatus: timeout" }
        if case .platformError(let error) = outcome, error.errorType == "Runtime.ExitError" { line += "\tStatus: error\tError Type: Runtime.ExitError" }
        return line
    }
}

/// Errors of the local emulator's own machinery.
public struct LocalError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public static func invalidConfiguration(_ problem: String) -> Self { .init(description: "invalid function configuration: \(problem)") }
    public static let serverFailed = Self(description: "the local Runtime API server did not start")
    public static func spawnFailed(_ command: String, _ reason: String) -> Self { .init(description: "cannot start \(command): \(reason)") }
}
