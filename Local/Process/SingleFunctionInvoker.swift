import Foundation
import Logging
import MartletRuntime
import NIOCore
import Synchronization

/// Serves invocations of one function from one warm environment, one at a time, starting a new
/// environment after a crash or timeout: the smallest pool, for `martlet serve-function`.
public final class SingleFunctionInvoker: FunctionInvoker {
    private struct Job: Sendable {
        var request: RuntimeEnvironment.Request
        var wantsLogTail: Bool
        var streamTo: (@Sendable (ByteBuffer) async -> Void)?
        /// `nil` for an `Event` invocation: nobody waits for it.
        var continuation: CheckedContinuation<(InvocationReport, String?), Never>?
    }

    public let configuration: FunctionConfiguration
    private let logger: Logger
    private let jobs: AsyncStream<Job>
    private let submit: AsyncStream<Job>.Continuation
    private let printLine: @Sendable (String) -> Void
    private let capture = LogCapture()

    /// - Parameter printLine: where the function's output and the START, END and REPORT lines go
    ///   (standard error by default).
    public init(
        configuration: FunctionConfiguration, logger: Logger,
        printLine: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.printLine = printLine
        (jobs, submit) = AsyncStream.makeStream(of: Job.self)
    }

    /// Runs environments until cancelled, replacing one that dies; stops the runtime process on the way out.
    public func run() async throws {
        var iterator = jobs.makeAsyncIterator()
        var waiting: Job? = nil
        let output = ProcessOutput.lines { [capture, printLine] line in
            printLine(line)
            capture.record(line)
        }
        while !Task.isCancelled {
            if waiting == nil { waiting = await iterator.next() }
            guard let first = waiting else { return }
            waiting = nil
            // Start an environment only when there is work, as Lambda does; keep it warm until it dies.
            waiting = try await FunctionInstance.with(configuration, output: output, logger: logger) { instance -> Job? in
                // Up to AWS_LAMBDA_MAX_CONCURRENCY invocations at once (one on standard Lambda).
                await withTaskGroup(of: Void.self) { group in
                    var running = 0
                    var job: Job? = first
                    while let current = job {
                        if running >= configuration.maxConcurrency {
                            await group.next()
                            running -= 1
                        }
                        guard instance.isAlive else { return current }
                        group.addTask { await self.serve(current, on: instance) }
                        running += 1
                        if configuration.maxConcurrency == 1 {
                            await group.next()
                            running -= 1
                            if !instance.isAlive { return nil }
                        }
                        job = await iterator.next()
                        if job == nil { return nil }
                    }
                    return nil
                }
            }
        }
    }

    private func serve(_ job: Job, on instance: FunctionInstance) async {
        let lines = [InvocationReportLines.start(job.request.requestID)]
        if job.wantsLogTail { capture.start() }
        lines.forEach(emit)
        let report = await instance.invoke(job.request, streamTo: job.streamTo)
        if job.wantsLogTail { await instance.outputSettled() }
        if case .platformError(let error) = report.outcome {
            emit("\(WallClock.iso8601(milliseconds: WallClock.nowMilliseconds)) \(error.errorMessage)")
        }
        emit(report.endLine)
        emit(report.reportLine)
        let tail = job.wantsLogTail ? capture.finish() : nil
        job.continuation?.resume(returning: (report, tail))
    }

    private func emit(_ line: String) {
        printLine(line)
        capture.record(line)
    }

    public func invoke(_ request: InvokeRequest) async throws(InvokeError) -> InvokeResult {
        let arn = "arn:aws:lambda:\(configuration.region):000000000000:function:\(request.functionName)"
        guard request.functionName == configuration.name else { throw .functionNotFound(arn) }
        if let qualifier = request.qualifier, qualifier != "$LATEST" { throw .functionNotFound("\(arn):\(qualifier)") }
        let environmentRequest = RuntimeEnvironment.Request(
            event: request.payload, timeout: configuration.timeout, traceID: request.traceID,
            clientContext: request.clientContext, tenantID: request.tenantID
        )
        switch request.invocationType {
        case .dryRun:
            return InvokeResult(requestID: environmentRequest.requestID, outcome: .success(body: ByteBuffer(), contentType: nil))
        case .event:
            submit.yield(Job(request: environmentRequest, wantsLogTail: false, streamTo: nil, continuation: nil))
            return InvokeResult(requestID: environmentRequest.requestID, outcome: .success(body: ByteBuffer(), contentType: nil))
        case .requestResponse:
            let (report, tail) = await withCheckedContinuation { continuation in
                submit.yield(Job(request: environmentRequest, wantsLogTail: request.wantsLogTail, streamTo: request.streamTo, continuation: continuation))
            }
            return InvokeResult(requestID: report.requestID, outcome: report.outcome, logTail: tail)
        }
    }
}

/// Keeps the last 4 KB of log output of the invocation being served, for `X-Amz-Log-Type: Tail`.
final class LogCapture: Sendable {
    static let limit = 4096
    private let buffer = Mutex<[UInt8]?>(nil)

    func start() { buffer.withLock { $0 = [] } }

    func record(_ line: String) {
        buffer.withLock { buffer in
            guard buffer != nil else { return }
            buffer!.append(contentsOf: line.utf8)
            buffer!.append(UInt8(ascii: "\n"))
            if buffer!.count > 2 * Self.limit { buffer!.removeFirst(buffer!.count - Self.limit) }
        }
    }

    /// Stops capturing and returns the last 4 KB.
    func finish() -> String {
        let bytes = buffer.withLock { buffer in
            defer { buffer = nil }
            return buffer ?? []
        }
        return String(decoding: bytes.suffix(Self.limit), as: UTF8.self)
    }
}

/// Lambda's platform log lines.
public enum InvocationReportLines {
    public static func start(_ requestID: String) -> String { "START RequestId: \(requestID) Version: $LATEST" }
}
