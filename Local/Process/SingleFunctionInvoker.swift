import Foundation
import Logging
import MartletRuntime
import NIOCore

/// Serves invocations of one function from one warm environment, one at a time, starting a new
/// environment after a crash or timeout: the smallest pool, for `martlet serve-function`.
public final class SingleFunctionInvoker: FunctionInvoker {
    private struct Job: Sendable {
        var request: RuntimeEnvironment.Request
        var continuation: CheckedContinuation<InvocationReport, Never>
    }

    public let configuration: FunctionConfiguration
    private let logger: Logger
    private let jobs: AsyncStream<Job>
    private let submit: AsyncStream<Job>.Continuation
    private let printLine: @Sendable (String) -> Void

    /// - Parameter printLine: where START, END and REPORT lines go (standard error by default).
    public init(
        configuration: FunctionConfiguration, logger: Logger,
        printLine: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.printLine = printLine
        (jobs, submit) = AsyncStream.makeStream(of: Job.self)
    }

    /// Runs environments until cancelled, replacing one that dies.
    public func run() async throws {
        var iterator = jobs.makeAsyncIterator()
        var waiting: Job? = nil
        while !Task.isCancelled {
            if waiting == nil { waiting = await iterator.next() }
            guard let first = waiting else { return }
            waiting = nil
            // Start an environment only when there is work, as Lambda does; keep it warm until it dies.
            try await FunctionInstance.with(configuration, logger: logger) { instance in
                var job: Job? = first
                while let current = job {
                    await serve(current, on: instance)
                    if !instance.isAlive { return }
                    job = await iterator.next()
                }
            }
        }
    }

    private func serve(_ job: Job, on instance: FunctionInstance) async {
        printLine(InvocationReportLines.start(job.request.requestID))
        let report = await instance.invoke(job.request)
        if case .platformError(let error) = report.outcome {
            printLine("\(WallClock.iso8601(milliseconds: WallClock.nowMilliseconds)) \(error.errorMessage)")
        }
        printLine(report.endLine)
        printLine(report.reportLine)
        job.continuation.resume(returning: report)
    }

    public func invoke(_ request: InvokeRequest) async throws(InvokeError) -> InvokeResult {
        guard request.functionName == configuration.name else {
            throw .functionNotFound("arn:aws:lambda:\(configuration.region):000000000000:function:\(request.functionName)")
        }
        if request.invocationType == .dryRun { return InvokeResult(outcome: .success(body: ByteBuffer(), contentType: nil)) }
        let environmentRequest = RuntimeEnvironment.Request(
            event: request.payload, timeout: configuration.timeout, traceID: request.traceID,
            clientContext: request.clientContext, tenantID: request.tenantID
        )
        let report = await withCheckedContinuation { continuation in
            submit.yield(Job(request: environmentRequest, continuation: continuation))
        }
        return InvokeResult(outcome: report.outcome)
    }
}

/// Lambda's platform log lines.
public enum InvocationReportLines {
    public static func start(_ requestID: String) -> String { "START RequestId: \(requestID) Version: $LATEST" }
}
