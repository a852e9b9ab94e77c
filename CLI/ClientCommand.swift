import ArgumentParser
import Foundation
import MartletClient
import MartletJobs
import MartletRuntime
import Synchronization

/// `martlet client`: runs one job against the application as its users do, with a live progress bar.
struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Submit a job over the WebSocket API, follow its progress and download the result.",
        discussion: """
            Works against `martlet local` (the defaults) or a deployed stack (--http-url, --ws-url and --key, or \
            MARTLET_HTTP_URL, MARTLET_WS_URL and MARTLET_KEY). With --input, the file is uploaded through a presigned \
            URL first and the job gets its key. A dropped connection is reopened and the job resumed by its status.

            Exit codes: 0 the result was saved; 1 the job failed or was cancelled; 3 the key was refused; \
            4 an API could not be reached; 5 the request was refused (e.g. invalid parameters); 6 timed out; \
            7 an upload or download failed.
            """
    )

    @Option(name: .customLong("http-url"), help: "The HTTP API's URL (default $MARTLET_HTTP_URL or http://127.0.0.1:3000).")
    var httpURL: String?
    @Option(name: .customLong("ws-url"), help: "The WebSocket API's URL (default $MARTLET_WS_URL or ws://127.0.0.1:3001).")
    var webSocketURL: String?
    @Option(help: "The client key (default $MARTLET_KEY or local-dev-key).") var key: String?
    @Option(help: "The model to run.") var model = "demo"
    @Option(help: "The prompt (the demo model's required parameter).") var prompt: String?
    @Option(name: .customLong("param"), help: "A parameter, NAME=VALUE (repeatable; VALUE is read as JSON when it parses, else as a string).")
    var parameters: [String] = []
    @Option(help: "A file to upload as the job's input.") var input: String?
    @Option(help: "Where to save the result: a file, or a folder (default: the current folder).") var output = "."
    @Option(help: "Seconds to wait for the job before giving up.") var timeout = 600

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration = JobClientConfiguration(
            httpURL: httpURL ?? environment["MARTLET_HTTP_URL"] ?? "http://127.0.0.1:3000",
            webSocketURL: webSocketURL ?? environment["MARTLET_WS_URL"] ?? "ws://127.0.0.1:3001",
            key: key ?? environment["MARTLET_KEY"] ?? "local-dev-key"
        )
        var values: [String: JSONValue] = [:]
        if let prompt { values["prompt"] = .string(prompt) }
        for parameter in parameters {
            let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--param takes NAME=VALUE, not \(parameter)") }
            values[String(parts[0])] = (try? JSONDecoder().decode(JSONValue.self, from: Data(parts[1].utf8))) ?? .string(String(parts[1]))
        }
        if let input, !FileManager.default.isReadableFile(atPath: input) { throw ValidationError("cannot read --input \(input)") }

        let display = ProgressDisplay(interactive: isatty(STDERR_FILENO) == 1)
        do {
            let outcome = try await JobClient(configuration: configuration).run(
                model: model, parameters: values, input: input, output: output, timeout: .seconds(timeout),
                onEvent: { display.show($0) }
            )
            display.finish()
            print(outcome.path)
            printError("martlet: job \(outcome.jobId) succeeded; \(outcome.bytes) bytes\(outcome.contentType.map { " of \($0)" } ?? "") saved to \(outcome.path)")
        } catch let error as JobClientError {
            display.finish()
            printError("martlet: \(error)")
            throw ExitCode(error.exitCode)
        } catch {
            display.finish()
            printError("martlet: \(error)")
            throw ExitCode(7)
        }
    }
}

/// Draws the job's state as a progress bar on one line of a terminal, or as plain lines otherwise.
final class ProgressDisplay: Sendable {
    private struct State {
        var jobId = ""
        var state = "CONNECTING"
        var progress = 0
        var message = ""
        var started = ContinuousClock.now
        var lastLine = ""
        var drawn = false
    }

    let interactive: Bool
    private let state = Mutex(State())

    init(interactive: Bool) { self.interactive = interactive }

    func show(_ event: JobClientEvent) {
        state.withLock { state in
            switch event {
            case .uploading(let name, let bytes): note(&state, "uploading \(name) (\(bytes) bytes)")
            case .uploaded(let key): note(&state, "uploaded as \(key)")
            case .connected(let reconnect): if reconnect { note(&state, "reconnected; resuming job \(state.jobId) by its status") }
            case .accepted(let jobId, let duplicate):
                state.jobId = jobId
                state.started = .now
                note(&state, "job \(jobId) \(duplicate ? "already submitted" : "accepted")")
            case .update(let jobState, let progress, let message):
                state.state = jobState.rawValue
                state.progress = max(0, min(100, progress))
                state.message = message ?? ""
                draw(&state)
            case .connectionLost(let reason): note(&state, "connection lost (\(reason)); reconnecting")
            case .downloading: note(&state, "downloading the result")
            case .downloaded: break
            }
        }
    }

    func finish() {
        state.withLock { state in
            if interactive, state.drawn { FileHandle.standardError.write(Data("\n".utf8)) }
            state.drawn = false
        }
    }

    private func note(_ state: inout State, _ text: String) {
        var line = ""
        if interactive, state.drawn { line = "\r\u{1B}[2K" }
        state.drawn = false
        FileHandle.standardError.write(Data((line + "martlet: " + text + "\n").utf8))
        if state.progress > 0 || state.state != "CONNECTING" { draw(&state) }
    }

    private func draw(_ state: inout State) {
        let width = 30
        let filled = state.progress * width / 100
        let duration = ContinuousClock.now - state.started
        let elapsed = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let seconds = String(format: "%.1f s", elapsed)
        let text = "[\(bar)] \(String(state.progress).leftPadded(3))%  \(state.state.padded(9))  \(seconds)  \(state.message)"
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text).utf8))
            state.drawn = true
        } else {
            // One line per state change or 10 % step, so logs stay short.
            let summary = "\(state.state) \(state.progress / 10)"
            guard summary != state.lastLine else { return }
            state.lastLine = summary
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
    fileprivate func padded(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
