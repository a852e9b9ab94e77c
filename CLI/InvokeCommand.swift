import ArgumentParser
import Foundation
import Synchronization
import Logging
import MartletLocal
import MartletRuntime
import NIOCore

/// `martlet invoke`: one function, one event, as Lambda would run it.
struct InvokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invoke",
        abstract: "Invoke a function once with one event.",
        discussion: """
            Starts the real bootstrap (built first when missing or stale) behind a local Runtime API, \
            sends the event, prints the result to standard output and the function's logs with a \
            Lambda-style REPORT line to standard error.

            Exit status: 0 success; 1 the function returned an error (or failed to initialise); \
            3 it timed out; 4 the runtime process exited; 2 bad input.
            """
    )

    @OptionGroup var options: FunctionOptions

    @Option(name: .shortAndLong, help: "A file with the event JSON; standard input when omitted and not a terminal, else {}.")
    var event: String?

    @Option(help: "The X-Ray trace header to pass to the function.")
    var traceId: String?

    func run() async throws {
        let payload = try readEvent()
        if let problem = JSONPayload.problem(in: payload) {
            printError("the event is not valid JSON: \(problem)")
            throw ExitCode(2)
        }
        let configuration = try options.configurationOrExit()
        let logger = Logger.cli
        let trace = traceId ?? TraceHeader.make()
        let streamed = Mutex(false)
        let report = try await runCancellingOnSignals { [logger] in
            try await FunctionInstance.with(configuration, logger: logger) { instance in
                let request = RuntimeEnvironment.Request(event: payload, timeout: configuration.timeout, traceID: trace)
                printError(InvocationReportLines.start(request.requestID))
                // A streamed response is printed chunk by chunk as it arrives.
                return await instance.invoke(request) { chunk in
                    streamed.withLock { $0 = true }
                    FileHandle.standardOutput.write(Data(chunk.readableBytesView))
                }
            }
        }
        if case .platformError(let error) = report.outcome {
            printError("\(WallClock.iso8601(milliseconds: WallClock.nowMilliseconds)) \(error.errorMessage)")
        }
        printError(report.endLine)
        printError(report.reportLine)
        var body = report.outcome.body
        if !(streamed.withLock { $0 } && report.outcome.isSuccess) {
            FileHandle.standardOutput.write(Data(body.readBytes(length: body.readableBytes) ?? []))
        }
        if isatty(1) != 0 { FileHandle.standardOutput.write(Data("\n".utf8)) }
        switch report.outcome {
        case .success, .streamed: return
        case .functionError, .initError: throw ExitCode(1)
        case .platformError(let error) where error.errorType == "Sandbox.Timedout": throw ExitCode(3)
        case .platformError(let error) where error.errorType.hasPrefix("Runtime.Exit"): throw ExitCode(4)
        case .platformError: throw ExitCode(1)
        }
    }

    private func readEvent() throws -> ByteBuffer {
        if let event {
            guard let data = FileManager.default.contents(atPath: event) else {
                printError("cannot read the event file \(event)")
                throw ExitCode(2)
            }
            return ByteBuffer(bytes: data)
        }
        if isatty(0) != 0 { return ByteBuffer(string: "{}") }
        return ByteBuffer(bytes: FileHandle.standardInput.readDataToEndOfFile())
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
