import Foundation
import NIOCore
import NIOPosix
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
        var writeEnd: Int32?
        switch output {
        case .inherit(let standardOutput, let standardError):
            process.standardOutput = FileHandle(fileDescriptor: standardOutput, closeOnDealloc: false)
            process.standardError = FileHandle(fileDescriptor: standardError, closeOnDealloc: false)
        case .lines:
            var ends: [Int32] = [0, 0]
            guard pipe(&ends) == 0 else { throw LocalError.spawnFailed(command[0], "cannot make an output pipe: errno \(errno)") }
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            outputDescriptor = ends[0]
            writeEnd = ends[1]
            let child = FileHandle(fileDescriptor: ends[1], closeOnDealloc: false)
            process.standardOutput = child
            process.standardError = child
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
            if let writeEnd { close(writeEnd) }
            if let outputDescriptor { close(outputDescriptor) }
            throw LocalError.spawnFailed(command[0], "\(error)")
        }
        if let writeEnd, let outputDescriptor, case .lines(let sink) = output {
            // The child has its copy; ours would keep the pipe from ever reaching end of file.
            close(writeEnd)
            readLines(from: outputDescriptor, to: sink)
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
        if exitStatus == nil, let kilobytes = Self.peakKilobytes(of: id) {
            let megabytes = (kilobytes + 1023) / 1024
            return state.withLock { state in
                state.peakMemoryMB = max(state.peakMemoryMB, megabytes)
                return state.peakMemoryMB
            }
        }
        return state.withLock { $0.peakMemoryMB }
    }
}

extension RuntimeProcess {
    /// `VmHWM` of /proc/PID/status, read with plain system calls (every invocation's REPORT reads it).
    fileprivate static func peakKilobytes(of pid: Int32) -> Int? {
        let file = open("/proc/\(pid)/status", O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { return nil }
        defer { close(file) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(file, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = buffer[..<count]
        let marker = Array("VmHWM:".utf8)
        guard let start = text.indices.first(where: { text[$0...].starts(with: marker) }) else { return nil }
        var kilobytes = 0
        var seenDigit = false
        for byte in text[(start + marker.count)...] {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                kilobytes = kilobytes * 10 + Int(byte - UInt8(ascii: "0"))
                seenDigit = true
            } else if seenDigit || byte == UInt8(ascii: "\n") {
                break
            }
        }
        return seenDigit ? kilobytes : nil
    }

    /// Reads the process's output on an event loop (no thread of its own, no hop per read) and hands
    /// each line to `sink`; the pipe is closed at end of file.
    fileprivate static func readLines(from descriptor: Int32, to sink: @escaping @Sendable (String) -> Void) {
        let bootstrap = NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: true)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(LineSplitter(sink: sink)) }
            }
        bootstrap.takingOwnershipOfDescriptor(input: descriptor).whenFailure { error in
            close(descriptor)
            sink("[martlet] cannot read the process's output: \(error)")
        }
    }
}

/// Splits the bytes of a process's output into lines for a sink; what is left at end of file is a line too.
private final class LineSplitter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var pending = ByteBuffer()
    private let sink: @Sendable (String) -> Void

    init(sink: @escaping @Sendable (String) -> Void) { self.sink = sink }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if pending.readableBytes == 0 {
            pending = bytes
        } else {
            pending.writeBuffer(&bytes)
        }
        while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - pending.readerIndex
            sink(pending.readString(length: length) ?? "")
            pending.moveReaderIndex(forwardBy: 1)
        }
        if pending.readableBytes == 0 { pending.clear() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelEvent, case .inputClosed = event as! ChannelEvent {
            finish()
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    private func finish() {
        if pending.readableBytes > 0, let rest = pending.readString(length: pending.readableBytes) { sink(rest) }
        pending.clear()
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
