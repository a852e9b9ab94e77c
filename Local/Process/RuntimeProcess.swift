import Foundation
import Synchronization

/// Where a runtime process's standard output and error go.
public enum ProcessOutput: Sendable {
    /// Straight to these file descriptors of ours, so lines keep their order with what we print.
    case inherit(standardOutput: Int32, standardError: Int32)
    /// Line by line to a closure (for log capture and the live view).
    case lines(@Sendable (String) -> Void)
}

/// A child process running a Lambda runtime, with its exit observed and its peak memory measured.
final class RuntimeProcess: Sendable {
    private struct State {
        var exitStatus: ProcessExitStatus?
        var exitWaiters: [CheckedContinuation<ProcessExitStatus, Never>] = []
        var peakMemoryMB = 0
    }

    let id: Int32
    private let process: Process
    private let state: Mutex<State>
    /// The read end of the output pipe, for `.lines` output.
    private let outputDescriptor: Int32?

    private init(process: Process, outputDescriptor: Int32?) {
        self.process = process
        self.id = process.processIdentifier
        self.state = Mutex(State())
        self.outputDescriptor = outputDescriptor
    }

    /// Starts `command`; `onExit` runs once when it ends, however it ends.
    static func spawn(
        command: [String], environment: [String: String], workingDirectory: String, output: ProcessOutput,
        onExit: @escaping @Sendable (ProcessExitStatus) -> Void
    ) throws -> RuntimeProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try resolve(command[0], path: environment["PATH"] ?? ""))
        process.arguments = Array(command.dropFirst())
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        process.standardInput = FileHandle.nullDevice
        var outputDescriptor: Int32?
        switch output {
        case .inherit(let standardOutput, let standardError):
            process.standardOutput = FileHandle(fileDescriptor: standardOutput, closeOnDealloc: false)
            process.standardError = FileHandle(fileDescriptor: standardError, closeOnDealloc: false)
        case .lines(let sink):
            let pipe = Pipe()
            let splitter = LineSplitter(sink: sink)
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                if data.isEmpty {
                    handle.readabilityHandler = nil
                    splitter.finish()
                } else {
                    splitter.feed(data)
                }
            }
            process.standardOutput = pipe
            process.standardError = pipe
            outputDescriptor = pipe.fileHandleForReading.fileDescriptor
        }
        let box = Mutex<RuntimeProcess?>(nil)
        process.terminationHandler = { finished in
            let status: ProcessExitStatus = finished.terminationReason == .uncaughtSignal
                ? .signalled(finished.terminationStatus) : .exited(finished.terminationStatus)
            box.withLock { $0 }?.exited(status)
            onExit(status)
        }
        do {
            try process.run()
        } catch {
            throw LocalError.spawnFailed(command[0], "\(error)")
        }
        let runtimeProcess = RuntimeProcess(process: process, outputDescriptor: outputDescriptor)
        box.withLock { $0 = runtimeProcess }
        // The handler may have fired before the box was filled.
        if !process.isRunning, runtimeProcess.exitStatus == nil {
            let status: ProcessExitStatus = process.terminationReason == .uncaughtSignal
                ? .signalled(process.terminationStatus) : .exited(process.terminationStatus)
            runtimeProcess.exited(status)
        }
        return runtimeProcess
    }

    private static func resolve(_ program: String, path: String) throws -> String {
        if program.contains("/") {
            guard FileManager.default.isExecutableFile(atPath: program) else {
                throw LocalError.spawnFailed(program, "no executable file there")
            }
            return program
        }
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw LocalError.spawnFailed(program, "not found on PATH")
    }

    private func exited(_ status: ProcessExitStatus) {
        let waiters: [CheckedContinuation<ProcessExitStatus, Never>] = state.withLock { state in
            guard state.exitStatus == nil else { return [] }
            state.exitStatus = status
            defer { state.exitWaiters = [] }
            return state.exitWaiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    var exitStatus: ProcessExitStatus? { state.withLock { $0.exitStatus } }

    /// Waits for the process to end.
    func waitForExit() async -> ProcessExitStatus {
        await withCheckedContinuation { continuation in
            let status: ProcessExitStatus? = state.withLock { state in
                if let status = state.exitStatus { return status }
                state.exitWaiters.append(continuation)
                return nil
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Waits (briefly) until what the process has written so far has reached the line sink.
    func outputSettled() async {
        guard let descriptor = outputDescriptor else { return }
        for _ in 0..<50 {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 0) <= 0 || entry.revents & Int16(POLLIN) == 0 { break }
            try? await Task.sleep(for: .milliseconds(1))
        }
        // The reader may hold bytes it has taken from the pipe but not yet handed on.
        try? await Task.sleep(for: .milliseconds(2))
    }

    /// SIGKILL, as Lambda stops a timed-out environment; waits for the exit.
    func kill() async {
        _ = peakMemoryMB
        if exitStatus == nil { Foundation.kill(id, SIGKILL) }
        _ = await waitForExit()
    }

    /// SIGTERM, then SIGKILL after a grace period; waits for the exit.
    func terminate(grace: Duration = .milliseconds(500)) async {
        guard exitStatus == nil else { return }
        Foundation.kill(id, SIGTERM)
        // Poll rather than race `waitForExit()`: a task group would wait for that child even after
        // the grace period, and a runtime that ignores SIGTERM would never be killed.
        let deadline = ContinuousClock.now + grace
        while exitStatus == nil, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(2))
        }
        if exitStatus == nil { await kill() }
    }

    /// The peak resident memory so far (`VmHWM`), in MB; the last value read once the process is gone.
    var peakMemoryMB: Int {
        if exitStatus == nil, let status = try? String(contentsOfFile: "/proc/\(id)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        {
            let megabytes = (kilobytes + 1023) / 1024
            return state.withLock { state in
                state.peakMemoryMB = max(state.peakMemoryMB, megabytes)
                return state.peakMemoryMB
            }
        }
        return state.withLock { $0.peakMemoryMB }
    }
}

/// Splits a byte stream into lines for a sink.
private final class LineSplitter: Sendable {
    private let buffer = Mutex(Data())
    private let sink: @Sendable (String) -> Void

    init(sink: @escaping @Sendable (String) -> Void) { self.sink = sink }

    func feed(_ data: Data) {
        let lines: [String] = buffer.withLock { buffer in
            buffer.append(data)
            var lines: [String] = []
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                lines.append(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                buffer.removeSubrange(buffer.startIndex...newline)
            }
            return lines
        }
        lines.forEach(sink)
    }

    func finish() {
        let rest = buffer.withLock { buffer in
            defer { buffer.removeAll() }
            return buffer.isEmpty ? nil : String(decoding: buffer, as: UTF8.self)
        }
        if let rest { sink(rest) }
    }
}

/// Today's date as `YYYY/MM/DD` (UTC), for log stream names.
enum WallClockDate {
    static func today() -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: Date())
        return String(format: "%04d/%02d/%02d", parts.year!, parts.month!, parts.day!)
    }
}
