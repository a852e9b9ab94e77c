import Foundation
import Logging
import MartletLocal
import MartletRuntime
import NIOCore
import Synchronization

/// Starts a Runtime API server for `environment` on an ephemeral port, runs `body` with its address, then stops it.
public func withRuntimeAPIServer<Result: Sendable>(
    _ environment: RuntimeEnvironment,
    invoker: (any FunctionInvoker)? = nil,
    _ body: (String) async throws -> Result
) async throws -> Result {
    let server = RuntimeAPIServer(environment: environment, invoker: invoker, logger: Logger(label: "test"))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        let (addresses, continuation) = AsyncStream.makeStream(of: String.self)
        group.addTask { try await server.run { continuation.yield($0) } }
        var iterator = addresses.makeAsyncIterator()
        let address = await iterator.next()!
        defer {
            environment.close { _ in .platformError(FunctionError(errorType: "Test.Stopped", errorMessage: "test ended")) }
            group.cancelAll()
        }
        return try await body(address)
    }
}

/// Runs `handler` in the real runtime loop against an in-process Runtime API, runs `body`, then stops both.
public func withRuntimeLoop<Result: Sendable>(
    handler: any ByteHandler,
    maxConcurrency: Int = 1,
    logSink: @escaping @Sendable (String) -> Void = { _ in },
    _ body: (RuntimeEnvironment) async throws -> Result
) async throws -> Result {
    let environment = RuntimeEnvironment(functionName: "test", maxConcurrency: maxConcurrency)
    let logger = Logger(label: "test") { LambdaLogHandler(label: $0, format: .text, level: .trace, sink: logSink) }
    return try await withRuntimeAPIServer(environment) { address in
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<maxConcurrency {
                group.addTask {
                    try await HTTPRuntimeAPIClient.withConnection(to: address) { client in
                        try await RuntimeLoop.run(client: client, handler: handler, logger: logger, exportsTraceID: maxConcurrency == 1)
                    }
                }
            }
            defer { group.cancelAll() }
            return try await body(environment)
        }
    }
}

/// A product built next to the test bundle (`bootstrap`, `martlet`), found through `/proc/self/exe`.
public func builtProduct(_ name: String) -> String {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
    // On Linux the test binary sits in the build folder itself; inside an .xctest bundle, climb out.
    while folder.path.hasSuffix(".xctest") || folder.lastPathComponent == "MacOS" || folder.lastPathComponent == "Contents" {
        folder = folder.deletingLastPathComponent()
    }
    return folder.appendingPathComponent(name).path
}

/// Parses JSON text into Foundation objects for order-insensitive comparison.
public func parsedJSON(_ text: some DataProtocol) throws -> NSObject {
    try JSONSerialization.jsonObject(with: Data(text), options: [.fragmentsAllowed]) as! NSObject
}

/// True when two JSON texts hold the same value, whatever their key order and spacing.
public func jsonEqual(_ left: some DataProtocol, _ right: some DataProtocol) throws -> Bool {
    try parsedJSON(left).isEqual(try parsedJSON(right))
}

/// A thread-safe list of captured lines, for asserting logs.
public final class LineRecorder: Sendable {
    private let storage = Mutex<[String]>([])
    public init() {}
    public var sink: @Sendable (String) -> Void { { line in self.storage.withLock { $0.append(line) } } }
    public var lines: [String] { storage.withLock { $0 } }
}

extension ByteBuffer {
    /// The readable bytes as a string.
    public var text: String { String(buffer: self) }
}

extension RuntimeEnvironment.Request {
    /// A JSON event request with a timeout for tests.
    public static func json(_ text: String, timeout: Duration = .seconds(3), traceID: String? = nil) -> Self {
        .init(event: ByteBuffer(string: text), timeout: timeout, traceID: traceID)
    }
}

/// Serves `handler` on an ephemeral loopback port, runs `body` with the base URL (`http://127.0.0.1:PORT`), then stops.
public func withHTTPServer<Result: Sendable>(
    maxBodySize: Int = 64 * 1024 * 1024,
    _ handler: @escaping HTTPServer.Handler,
    _ body: (String) async throws -> Result
) async throws -> Result {
    let server = HTTPServer(host: "127.0.0.1", port: 0, maxBodySize: maxBodySize, logger: Logger(label: "test"), handler: handler)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        group.addTask { try await server.run { continuation.yield($0.port ?? 0) } }
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next()!
        defer { group.cancelAll() }
        return try await body("http://127.0.0.1:\(port)")
    }
}

/// Requests a scripted server received, in order.
public final class RequestLog: Sendable {
    private let storage = Mutex<[HTTPServerRequest]>([])
    public init() {}
    public func record(_ request: HTTPServerRequest) { storage.withLock { $0.append(request) } }
    public var requests: [HTTPServerRequest] { storage.withLock { $0 } }
    public var count: Int { storage.withLock { $0.count } }
}

/// The first `http://…` URL on the first line a process writes to `pipe` (servers announce their address so).
public func announcedURL(_ pipe: Pipe) -> String? {
    var banner = Data()
    while !banner.contains(UInt8(ascii: "\n")) {
        let chunk = pipe.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        banner.append(chunk)
    }
    let line = String(decoding: banner, as: UTF8.self)
    return line.range(of: "http://").map { String(line[$0.lowerBound...].prefix { !$0.isWhitespace }) }
}

/// Runs the local AWS endpoint on an ephemeral loopback port (state in `database`, objects under
/// `objectsFolder`) while `body` runs with its base URL.
public func withLocalEndpoint<Result: Sendable>(
    database: SQLiteDatabase, objectsFolder: String, credentials: LocalCredentials = .default,
    _ body: (String, LocalEndpoint) async throws -> Result
) async throws -> Result {
    let endpoint = try LocalEndpoint(database: database, objectsFolder: objectsFolder, credentials: credentials, logger: Logger(label: "test"))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        group.addTask { try await endpoint.run(port: 0) { continuation.yield($0.port ?? 0) } }
        var iterator = ports.makeAsyncIterator()
        let url = "http://127.0.0.1:\(await iterator.next()!)"
        defer { group.cancelAll() }
        return try await body(url, endpoint)
    }
}

/// Runs `stack` until `body` (given its addresses) returns; a stack that fails to start throws.
public func withRunningStack<Result: Sendable>(_ stack: LocalStack, _ body: (LocalStack.Addresses) async throws -> Result) async throws -> Result {
    try await withThrowingTaskGroup(of: Void.self) { group in
        let (ready, continuation) = AsyncStream.makeStream(of: LocalStack.Addresses.self)
        group.addTask {
            defer { continuation.finish() }
            try await stack.run { continuation.yield($0) }
        }
        var iterator = ready.makeAsyncIterator()
        guard let addresses = await iterator.next() else {
            try await group.next()
            throw CancellationError()
        }
        defer { group.cancelAll() }
        return try await body(addresses)
    }
}

/// Runs `martlet local` in this process from `template` (written to a temporary folder), on
/// ephemeral ports with no workers and the built bootstrap, until `body` returns.
public func withTemplateStack<Result: Sendable>(
    _ template: String, _ body: (LocalStack.Addresses, LocalStack) async throws -> Result
) async throws -> Result {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-localstack-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try template.write(toFile: folder + "/template.yaml", atomically: true, encoding: .utf8)
    var options = LocalStack.Options(templatePath: folder + "/template.yaml", bootstrap: builtProduct("bootstrap"))
    options.endpointPort = 0
    options.httpPort = 0
    options.webSocketPort = 0
    options.workers = 0
    let stack = LocalStack(options: options, logger: Logger(label: "test")) { _ in }
    return try await withRunningStack(stack) { addresses in try await body(addresses, stack) }
}
