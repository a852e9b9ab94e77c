import MartletRuntime
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A model that runs an executable per job: a Python/PyTorch script on a GPU, say.
///
/// The command starts in the job's work folder with the job on stdin as one JSON object,
/// `{"jobId", "model", "parameters", "inputPath", "outputDir"}`, and reports on stdout, one line each:
/// - `PROGRESS <0-100> <message>` or `{"progress": 42, "message": "..."}`: forwarded to `progress`;
/// - `RESULT <path> [content-type]` or `{"result": "path", "contentType": "...", "summary": "..."}`: the result
///   file, relative to the work folder unless absolute (use the JSON form for paths with spaces).
///
/// Anything else on stdout or stderr is log; the last 50 lines go into the error when the command fails.
/// Cancellation and the timeout send SIGTERM to the command's process group, then SIGKILL after
/// `terminationGracePeriod`.
///
/// ```swift
/// let model = CommandModel(name: "caption", executable: "python3", arguments: ["model.py"], timeout: .seconds(600))
/// ```
struct CommandModel: JobModel {
    let name: String
    let executable: String
    let arguments: [String]
    /// Variables added to the worker's environment for the command.
    let environment: [String: String]
    let timeout: Duration?
    /// How long a command has between SIGTERM and SIGKILL.
    var terminationGracePeriod: Duration = .seconds(5)
    /// How long to wait for the output pipes to close once the command exited (a child it left may hold them).
    var outputGracePeriod: Duration = .seconds(2)

    static let logLines = 50

    init(name: String, executable: String, arguments: [String], environment: [String: String] = [:], timeout: Duration?)
    {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.timeout = timeout
    }

    /// Checks that the executable exists and may be run.
    func warmUp() async throws {
        _ = try executableURL()
    }

    func run(_ job: ModelJob, progress: @Sendable (Int, String) async throws -> Void) async throws -> ModelResult {
        try Task.checkCancellation()
        let executable = try executableURL()
        let input = try Self.openJobInput(job)
        let (events, continuation) = AsyncStream.makeStream(of: CommandEvent.self)
        let output = CommandOutput()
        defer { continuation.finish() }
        let exit = ExitSignal()

        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(
                executable: executable.path,
                arguments: arguments,
                environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                directory: job.workFolder,
                standardInput: input.fileDescriptor
            )
        } catch {
            try? input.close()
            throw ModelError(message: "could not start \(executable.path): \(error)", isRetryable: false)
        }
        try? input.close()
        child.onExit { termination in
            continuation.yield(.exited(termination))
            exit.signal()
        }
        // The command leads its own process group, so signals reach the children it starts too.
        let group = ProcessGroup(id: child.pid, exit: exit)

        let stdoutReader = LineReader(child.standardOutput) { line in
            switch CommandOutputLine(line) {
            case .progress(let percent, let message):
                if output.enqueueProgress() { continuation.yield(.progress(percent, message)) }
            case .result(let result): output.setResult(result)
            case .log(let text): output.log(text)
            }
        } onClose: {
            continuation.yield(.outputClosed)
        }
        let stderrReader = LineReader(child.standardError) { line in
            output.log(line)
        } onClose: {
            continuation.yield(.outputClosed)
        }
        defer {
            stdoutReader.cancel()
            stderrReader.cancel()
        }

        let termination: CommandTermination
        do {
            termination = try await withThrowingTaskGroup(of: Void.self) { timers in
                defer { timers.cancelAll() }
                if let timeout {
                    timers.addTask {
                        try await Task.sleep(for: timeout)
                        continuation.yield(.timedOut)
                    }
                }
                var exited: CommandTermination?
                var openPipes = 2
                for await event in events {
                    switch event {
                    case .progress(let percent, let message):
                        output.dequeueProgress()
                        try await progress(percent, message)
                    case .outputClosed:
                        openPipes -= 1
                        if openPipes == 0, let exited { return exited }
                    case .exited(let termination):
                        exited = termination
                        if openPipes == 0 { return termination }
                        let grace = outputGracePeriod
                        timers.addTask {
                            try await Task.sleep(for: grace)
                            continuation.yield(.outputGraceElapsed)
                        }
                    case .outputGraceElapsed:
                        if let exited { return exited }
                    case .timedOut:
                        throw CommandTimeout()
                    }
                }
                // The stream ends early only when this task is cancelled.
                throw CancellationError()
            }
        } catch {
            await group.stop(gracePeriod: terminationGracePeriod)
            if error is CommandTimeout {
                let seconds = timeout.map { Self.format($0) } ?? "?"
                throw ModelError(message: "timed out after \(seconds) s" + output.tail(prefix: ": "), isRetryable: true)
            }
            if error is CancellationError || Task.isCancelled { throw CancellationError() }
            throw error
        }
        // Children the command left behind would outlive the job's work folder.
        group.killRemaining()
        return try result(of: termination, output: output, workFolder: job.workFolder)
    }

    private func result(
        of termination: CommandTermination,
        output: CommandOutput,
        workFolder: String
    ) throws -> ModelResult {
        switch termination {
        case .signal(let signal):
            throw ModelError(
                message: "command was killed by signal \(signal)" + output.tail(prefix: ": "),
                isRetryable: true
            )
        case .exit(let status) where status != 0:
            throw ModelError(
                message: "command exited with status \(status)" + output.tail(prefix: ": "),
                isRetryable: true
            )
        case .exit:
            guard let named = output.result else {
                throw ModelError(
                    message: "command exited without printing \"RESULT <path> [content-type]\""
                        + output.tail(prefix: ": "),
                    isRetryable: false
                )
            }
            let path = named.path.hasPrefix("/") ? named.path : workFolder + "/" + named.path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw ModelError(message: "command's result file \(named.path) does not exist", isRetryable: false)
            }
            return ModelResult(
                path: path,
                contentType: named.contentType ?? Self.contentType(forPath: path),
                summary: named.summary
            )
        }
    }

    /// The executable, found on `PATH` when its name has no slash.
    func executableURL() throws -> URL {
        let fileManager = FileManager.default
        if executable.contains("/") {
            guard fileManager.isExecutableFile(atPath: executable) else {
                throw ModelError(message: "\(executable) does not exist or is not executable", isRetryable: false)
            }
            return URL(fileURLWithPath: executable)
        }
        let path = environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") where !folder.isEmpty {
            let candidate = folder + "/" + executable
            if fileManager.isExecutableFile(atPath: candidate) { return URL(fileURLWithPath: candidate) }
        }
        throw ModelError(message: "\(executable) was not found on PATH or is not executable", isRetryable: false)
    }

    /// The job as JSON in an unlinked file, for the command's stdin: a file never blocks a writer the way a full
    /// pipe would when the command does not read it.
    private static func openJobInput(_ job: ModelJob) throws -> FileHandle {
        let document: JSONValue = .object([
            "jobId": .string(job.jobID),
            "model": .string(job.model),
            "parameters": .object(job.parameters),
            "inputPath": job.inputPath.map(JSONValue.string) ?? .null,
            "outputDir": .string(job.workFolder),
        ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let path = job.workFolder + "/.job-\(UUID().uuidString).json"
        do {
            try (encoder.encode(document) + Data("\n".utf8)).write(to: URL(fileURLWithPath: path))
            defer { unlink(path) }
            return try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        } catch {
            throw ModelError(message: "could not write the job for the command: \(error)", isRetryable: true)
        }
    }

    static func contentType(forPath path: String) -> String {
        let types = [
            "json": "application/json", "txt": "text/plain; charset=utf-8", "wav": "audio/wav", "mp3": "audio/mpeg",
            "flac": "audio/flac", "ogg": "audio/ogg", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
            "webp": "image/webp", "gif": "image/gif", "mp4": "video/mp4", "webm": "video/webm", "csv": "text/csv",
            "html": "text/html", "pdf": "application/pdf", "npy": "application/octet-stream",
        ]
        let name = path.split(separator: "/").last ?? ""
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        return types[name[name.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }

    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return value.rounded() == value ? String(Int64(value)) : String(value)
    }
}

// MARK: - The output protocol

/// One line of a command's stdout, classified.
enum CommandOutputLine: Equatable, Sendable {
    case progress(Int, String)
    case result(NamedResult)
    case log(String)

    /// A result file as the command named it.
    struct NamedResult: Equatable, Sendable {
        var path: String
        var contentType: String?
        var summary: String?
    }

    init(_ line: String) {
        if line.hasPrefix("PROGRESS ") {
            let rest = line.dropFirst("PROGRESS ".count).drop { $0 == " " }
            let number = rest.prefix { $0 != " " }
            if let value = Double(number), value.isFinite {
                let message = rest.dropFirst(number.count).drop { $0 == " " }
                self = .progress(Self.percent(value), String(message))
                return
            }
        } else if line.hasPrefix("RESULT ") {
            let words = line.dropFirst("RESULT ".count).split(
                separator: " ",
                maxSplits: 1,
                omittingEmptySubsequences: true
            )
            if let path = words.first {
                let contentType = words.count > 1 ? words[1].trimmingCharacters(in: .whitespaces) : nil
                self = .result(NamedResult(path: String(path), contentType: contentType, summary: nil))
                return
            }
        } else if line.hasPrefix("{"),
            case .object(let members)? = try? JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
        {
            if case .number(let value)? = members["progress"], value.isFinite {
                self = .progress(Self.percent(value), members["message"]?.stringValue ?? "")
                return
            }
            if case .string(let path)? = members["result"], !path.isEmpty {
                self = .result(
                    NamedResult(
                        path: path,
                        contentType: members["contentType"]?.stringValue,
                        summary: members["summary"]?.stringValue
                    )
                )
                return
            }
        }
        self = .log(line)
    }

    private static func percent(_ value: Double) -> Int { Int(min(100, max(0, value.rounded()))) }
}

/// What a running command reports to the loop that waits for it.
private enum CommandEvent: Sendable {
    case progress(Int, String)
    case outputClosed
    case exited(CommandTermination)
    case outputGraceElapsed
    case timedOut
}

private enum CommandTermination: Sendable, Equatable {
    case exit(Int32)
    case signal(Int32)
}

private struct CommandTimeout: Error {}

/// What the command printed: the log tail, the named result, and how many progress reports wait to be forwarded.
private final class CommandOutput: Sendable {
    private struct State {
        var tail: [String] = []
        var result: CommandOutputLine.NamedResult?
        var pendingProgress = 0
    }
    private let state = Mutex(State())
    /// Progress reports beyond this many unforwarded ones are dropped, so a chatty command cannot fill memory.
    private static let maxPendingProgress = 1000
    private static let maxLineLength = 500

    func log(_ line: String) {
        let line = line.count > Self.maxLineLength ? String(line.prefix(Self.maxLineLength)) + "…" : line
        state.withLock { state in
            state.tail.append(line)
            if state.tail.count > CommandModel.logLines {
                state.tail.removeFirst(state.tail.count - CommandModel.logLines)
            }
        }
    }

    func setResult(_ result: CommandOutputLine.NamedResult) { state.withLock { $0.result = result } }

    var result: CommandOutputLine.NamedResult? { state.withLock { $0.result } }

    func enqueueProgress() -> Bool {
        state.withLock { state in
            guard state.pendingProgress < Self.maxPendingProgress else { return false }
            state.pendingProgress += 1
            return true
        }
    }

    func dequeueProgress() { state.withLock { $0.pendingProgress -= 1 } }

    /// The last lines of output after `prefix`, or nothing when there were none.
    func tail(prefix: String) -> String {
        let lines = state.withLock { $0.tail }
        return lines.isEmpty ? "" : prefix + lines.joined(separator: "\n")
    }
}

// MARK: - Processes and pipes

/// Signals the command's exit to any number of waiters, each with its own time limit.
private final class ExitSignal: Sendable {
    private struct State {
        var exited = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
    }
    private let state = Mutex(State())

    var hasExited: Bool { state.withLock { $0.exited } }

    func signal() {
        let waiters = state.withLock { state in
            state.exited = true
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Waits until the command exited (`true`) or `limit` passed (`false`); deliberately not cancellable, as it
    /// runs while a cancelled job cleans up.
    func wait(upTo limit: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            let id: Int? = state.withLock { state in
                if state.exited { return nil }
                state.nextID += 1
                state.waiters[state.nextID] = continuation
                return state.nextID
            }
            guard let id else { return continuation.resume(returning: true) }
            let (seconds, attoseconds) = limit.components
            let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
                state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: false)
            }
        }
    }
}

/// The command's process group, which the command leads.
private struct ProcessGroup: Sendable {
    var id: pid_t
    var exit: ExitSignal

    /// SIGTERM to the group, SIGKILL after `gracePeriod`; returns once the command exited.
    func stop(gracePeriod: Duration) async {
        guard id > 1 else { return }
        send(SIGTERM)
        if await !exit.wait(upTo: gracePeriod) {
            send(SIGKILL)
            _ = await exit.wait(upTo: .seconds(10))
        }
        killRemaining()
    }

    /// SIGKILL to whatever is left in the group after the command exited.
    func killRemaining() {
        guard id > 1 else { return }
        kill(-id, SIGKILL)
    }

    private func send(_ signal: Int32) {
        kill(-id, signal)
        // In case the command moved itself to another group; only while it is still ours to signal.
        if !exit.hasExited { kill(id, signal) }
    }
}

/// Reads a pipe as data arrives, on an event loop (no thread of its own), and hands over complete lines.
///
/// `onClose` runs once, after the last line, when the pipe reaches end of file or the reader is cancelled.
/// (A dispatch read source did this before; libdispatch's epoll backend now and then crashed
/// draining events for such sources on Linux.)
private final class LineReader: Sendable {
    private let channel: EventLoopFuture<any Channel>
    /// Long enough for a JSON protocol line; longer lines are cut.
    static let maxLineLength = 64 * 1024

    /// Takes ownership of `descriptor`, closing it when done.
    init(
        _ descriptor: Int32,
        onLine: @escaping @Sendable (String) -> Void,
        onClose: @escaping @Sendable () -> Void
    ) {
        let handler = LineHandler(onLine: onLine, onClose: onClose)
        channel = NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) } }
            .takingOwnershipOfDescriptor(input: descriptor)
        channel.whenFailure { error in
            close(descriptor)
            onLine("cannot read the command's output: \(error)")
            onClose()
        }
    }

    /// Stops reading; `onClose` runs once what was read has been handed over.
    func cancel() { channel.whenSuccess { $0.close(promise: nil) } }

    private final class LineHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer

        private let splitter = Mutex(LineSplitter(maxLineLength: LineReader.maxLineLength))
        private let closed = Atomic(false)
        private let onLine: @Sendable (String) -> Void
        private let onClose: @Sendable () -> Void

        init(onLine: @escaping @Sendable (String) -> Void, onClose: @escaping @Sendable () -> Void) {
            self.onLine = onLine
            self.onClose = onClose
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            for line in splitter.withLock({ $0.append(bytes.readableBytesView) }) { onLine(line) }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, case .inputClosed = event {
                context.close(promise: nil)  // end of file
                return
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            guard !closed.exchange(true, ordering: .relaxed) else { return }
            if let last = splitter.withLock({ $0.finish() }) { onLine(last) }
            onClose()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)  // an error no retry will fix: end the output
        }
    }
}

/// Splits bytes into lines (LF or CRLF), cutting lines longer than `maxLineLength`.
struct LineSplitter: Sendable {
    let maxLineLength: Int
    private var pending: [UInt8] = []
    private var skippingRest = false

    init(maxLineLength: Int) { self.maxLineLength = maxLineLength }

    mutating func append(_ bytes: some Collection<UInt8>) -> [String] {
        var lines: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if !skippingRest { lines.append(take()) }
                skippingRest = false
            } else if !skippingRest {
                pending.append(byte)
                if pending.count >= maxLineLength {
                    lines.append(take() + "…")
                    skippingRest = true
                }
            }
        }
        return lines
    }

    /// The unterminated last line, if any.
    mutating func finish() -> String? {
        pending.isEmpty ? nil : take()
    }

    private mutating func take() -> String {
        if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
        defer { pending.removeAll(keepingCapacity: true) }
        return String(decoding: pending, as: UTF8.self)
    }
}

/// A command started with `posix_spawn`, leading a new process group.
///
/// Not Foundation's `Process`: that spawns with the calling thread's signal mask, and the threads Swift
/// concurrency runs on block SIGTERM, so a command started from a task could never be asked to stop. Here the
/// command starts with no signals blocked and default handlers, whatever the worker's own settings.
private struct ChildProcess: Sendable {
    var pid: pid_t
    /// The read ends of the command's stdout and stderr pipes; the caller closes them.
    var standardOutput: Int32
    var standardError: Int32

    struct SpawnError: Error, CustomStringConvertible {
        var call: String
        var code: Int32
        var description: String { "\(call): \(String(cString: strerror(code)))" }
    }

    static func spawn(
        executable: String,
        arguments: [String],
        environment: [String: String],
        directory: String,
        standardInput: Int32
    ) throws -> ChildProcess {
        let output = try makePipe()
        let error: (read: Int32, write: Int32)
        do { error = try makePipe() } catch {
            close(output.read)
            close(output.write)
            throw error
        }
        defer {
            close(output.write)
            close(error.write)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, standardInput, 0)
        posix_spawn_file_actions_adddup2(&actions, output.write, 1)
        posix_spawn_file_actions_adddup2(&actions, error.write, 2)
        var code = directory.withCString { SpawnExtensions.addChdir(&actions, $0) }
        if code == 0 { code = SpawnExtensions.addCloseFrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        )

        var pid: pid_t = 0
        if code == 0 {
            let argv = [executable] + arguments
            let envp = environment.map { "\($0.key)=\($0.value)" }
            code = withCStringArray(argv) { argv in
                withCStringArray(envp) { envp in posix_spawn(&pid, executable, &actions, &attributes, argv, envp) }
            }
        }
        guard code == 0 else {
            close(output.read)
            close(error.read)
            throw SpawnError(call: "posix_spawn", code: code)
        }
        return ChildProcess(pid: pid, standardOutput: output.read, standardError: error.read)
    }

    /// Calls `handler` once the command exited, from a thread that waits for it (and reaps it).
    func onExit(_ handler: @escaping @Sendable (CommandTermination) -> Void) {
        let pid = pid
        let thread = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 {
                guard errno == EINTR else { return handler(.exit(-1)) }
            }
            // The W* macros, which Swift does not import.
            handler(status & 0x7f == 0 ? .exit((status >> 8) & 0xff) : .signal(status & 0x7f))
        }
        thread.name = "CommandModel.wait"
        thread.start()
    }

    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var descriptors: [Int32] = [-1, -1]
        // `pipe2` is not imported; close-on-exec right after (our own spawns also close all higher descriptors).
        guard pipe(&descriptors) == 0 else { throw SpawnError(call: "pipe", code: errno) }
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        return (descriptors[0], descriptors[1])
    }

    private static func withCStringArray<R>(
        _ strings: [String],
        _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R
    ) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29) and `…_addclosefrom_np` (2.34), looked up at run time
/// because Swift does not import them.
private enum SpawnExtensions {
    private typealias AddChdir =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>)
        -> Int32
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    private static func lookUp<F>(_ name: String, as type: F.Type) -> F? {
        // RTLD_DEFAULT: search the process's global symbols.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: type)
    }

    static func addChdir(
        _ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>,
        _ path: UnsafePointer<CChar>
    ) -> Int32 {
        guard let function = lookUp("posix_spawn_file_actions_addchdir_np", as: AddChdir.self) else { return ENOSYS }
        return function(actions, path)
    }

    /// Closes inherited descriptors the worker opened without close-on-exec; a no-op where unavailable.
    static func addCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ first: Int32) -> Int32 {
        guard let function = lookUp("posix_spawn_file_actions_addclosefrom_np", as: AddCloseFrom.self) else { return 0 }
        return function(actions, first)
    }
}
