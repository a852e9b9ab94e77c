import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// ``HTTPTransport`` over SwiftNIO's HTTP/1.1, with TLS from NIOSSL: keep-alive connections pooled
/// per origin, request and response bodies streamed with back-pressure.
///
/// Every AWS API this library calls speaks HTTP/1.1, so the transport carries no HTTP/2, no
/// compression and only the BoringSSL that NIOSSL brings: that is what keeps the Lambda zip small.
///
/// ```swift
/// let aws = try AWSClient(environment: environment, transport: HTTP1Transport.shared)
/// ```
public final class HTTP1Transport: HTTPTransport {
    /// The process-wide transport; it never needs shutting down.
    public static let shared = HTTP1Transport()

    public struct Configuration: Sendable {
        /// How long opening a connection (TCP and TLS) may take, within the request's own timeout.
        public var connectTimeout: Duration = .seconds(10)
        /// Idle keep-alive connections kept per origin; more are closed when released.
        public var maximumIdleConnectionsPerOrigin = 32
        /// TLS for `https` origins: the system's trust roots by default.
        public var tls = TLSConfiguration.makeClientConfiguration()

        public init() {}
    }

    private let group: any EventLoopGroup
    private let configuration: Configuration
    private let pool: ConnectionPool
    private let tls = Mutex<NIOSSLContext?>(nil)

    public init(eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, configuration: Configuration = .init()) {
        self.group = eventLoopGroup
        self.configuration = configuration
        self.pool = ConnectionPool(maximumIdlePerOrigin: configuration.maximumIdleConnectionsPerOrigin)
    }

    public func send(_ request: AWSHTTPRequest, timeout: Duration) async throws -> AWSHTTPResponse {
        let origin = try Origin(request.url)
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let channel: any Channel
        if let idle = pool.take(origin) { channel = idle } else { channel = try await connect(to: origin, deadline: deadline) }
        do {
            return try await HTTP1Exchange.run(request, on: channel, deadline: deadline) { [pool] in pool.release(channel, origin: origin) }
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    private func connect(to origin: Origin, deadline: NIODeadline) async throws -> any Channel {
        let tlsContext = origin.usesTLS ? try tlsContext() : nil
        let connectTimeout = min(TimeAmount(configuration.connectTimeout), deadline - .now())
        let serverHostname = origin.isIPAddress ? nil : origin.host
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tlsContext {
                        try pipeline.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: serverHostname))
                    }
                    try pipeline.addHTTPClientHandlers()
                    try pipeline.addHandler(HTTP1ClientHandler())
                }
            }
        do {
            return try await bootstrap.connect(host: origin.host, port: origin.port).get()
        } catch {
            throw HTTP1TransportError.connectFailed("\(origin): \(error)")
        }
    }

    /// One TLS context for every connection, made on first use (loading the trust roots costs
    /// milliseconds that a function making no HTTPS call should not pay at start-up).
    private func tlsContext() throws -> NIOSSLContext {
        try tls.withLock { context in
            if let context { return context }
            let made = try NIOSSLContext(configuration: configuration.tls)
            context = made
            return made
        }
    }
}

/// Why a request got no response.
public struct HTTP1TransportError: Error, CustomStringConvertible {
    public let description: String

    static func connectFailed(_ detail: String) -> Self { Self(description: "cannot connect to \(detail)") }
    static let closedBeforeResponse = Self(description: "the connection closed before the response was complete")
    static let timedOut = Self(description: "no response before the request's deadline")
    static func unsupportedScheme(_ scheme: String) -> Self { Self(description: "the URL scheme \"\(scheme)\" is neither http nor https") }
    static func bodyLength(sent: Int64, declared: Int64) -> Self {
        Self(description: "the request body had \(sent) bytes, but \(declared) were declared")
    }
}

/// Where a connection goes: scheme, host and port.
struct Origin: Hashable, Sendable, CustomStringConvertible {
    var usesTLS: Bool
    var host: String
    var port: Int

    init(_ url: RequestURL) throws(HTTP1TransportError) {
        switch url.scheme.lowercased() {
        case "https": usesTLS = true
        case "http": usesTLS = false
        default: throw .unsupportedScheme(url.scheme)
        }
        host = url.host.hasPrefix("[") && url.host.hasSuffix("]") ? String(url.host.dropFirst().dropLast()) : url.host
        port = url.port ?? (usesTLS ? 443 : 80)
    }

    var isIPAddress: Bool { (try? SocketAddress(ipAddress: host, port: port)) != nil }
    var description: String { "\(usesTLS ? "https" : "http")://\(host):\(port)" }
}

/// Idle keep-alive connections by origin. A connection is in the pool only while no request uses it.
final class ConnectionPool: Sendable {
    private let idle = Mutex<[Origin: [any Channel]]>([:])
    private let maximumIdlePerOrigin: Int

    init(maximumIdlePerOrigin: Int) { self.maximumIdlePerOrigin = maximumIdlePerOrigin }

    /// The most recently used idle connection that is still open.
    func take(_ origin: Origin) -> (any Channel)? {
        idle.withLock { idle in
            while let channel = idle[origin]?.popLast() {
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    /// Keeps a connection whose exchange ended cleanly, or closes it when the pool is full.
    func release(_ channel: any Channel, origin: Origin) {
        let kept = idle.withLock { idle in
            guard channel.isActive, idle[origin, default: []].count < maximumIdlePerOrigin else { return false }
            idle[origin, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }
}

/// One request and its response on a connection.
enum HTTP1Exchange {
    /// Bodies read from files go out in chunks of this size.
    static let fileChunkSize = 256 * 1024

    /// Sends the request and returns once the response head arrived; `onIdle` runs when the response
    /// has been read to its end and the connection can carry another request.
    static func run(
        _ request: AWSHTTPRequest, on channel: any Channel, deadline: NIODeadline, onIdle: @escaping @Sendable () -> Void
    ) async throws -> AWSHTTPResponse {
        var headers = HTTPHeaders()
        headers.reserveCapacity(request.headers.count + 2)
        if !request.headers.contains(where: { $0.name.lowercased() == "host" }) { headers.add(name: "Host", value: request.url.hostHeader) }
        for (name, value) in request.headers where name.lowercased() != "content-length" { headers.add(name: name, value: value) }
        if request.body.length > 0 || ["PUT", "POST", "PATCH"].contains(request.method) {
            headers.add(name: "Content-Length", value: String(request.body.length))
        }
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: request.url.requestTarget, headers: headers)
        var inline: ByteBuffer?
        if case .bytes(let buffer) = request.body { inline = buffer }
        let started = channel.eventLoop.flatSubmit { [inline] in
            let promise = channel.eventLoop.makePromise(of: HTTP1ClientHandler.ResponseStart.self)
            channel.triggerUserOutboundEvent(HTTP1ClientHandler.Begin(response: promise, deadline: deadline, onIdle: onIdle), promise: nil)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let inline {
                if inline.readableBytes > 0 { channel.write(HTTPClientRequestPart.body(.byteBuffer(inline)), promise: nil) }
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            } else {
                channel.flush()
            }
            return promise.futureResult
        }
        if inline == nil {
            do {
                try await writeBody(request.body, to: channel)
            } catch {
                // The server may answer and close before taking the whole body (an S3 error, say):
                // then that answer is the result. A body that failed on our side ends the connection.
                if channel.isActive { try? await channel.close() }
                if let start = try? await started.get() { return response(start) }
                throw error
            }
        }
        return response(try await awaitHead(started, on: channel))
    }

    /// Waits for the response head; cancelling the task (a long poll that is no longer wanted, say)
    /// closes the connection and throws `CancellationError`.
    private static func awaitHead(
        _ started: EventLoopFuture<HTTP1ClientHandler.ResponseStart>, on channel: any Channel
    ) async throws -> HTTP1ClientHandler.ResponseStart {
        do {
            return try await withTaskCancellationHandler {
                try await started.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
    }

    private static func response(_ start: HTTP1ClientHandler.ResponseStart) -> AWSHTTPResponse {
        AWSHTTPResponse(status: Int(start.head.status.code), headers: start.head.headers.map { ($0.name, $0.value) }, body: start.body)
    }

    private static func writeBody(_ body: RequestBody, to channel: any Channel) async throws {
        var sent: Int64 = 0
        switch body {
        case .bytes:
            return
        case .stream(let chunks, _):
            for try await chunk in chunks where chunk.readableBytes > 0 {
                sent += Int64(chunk.readableBytes)
                try await channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(chunk))).get()
            }
        case .file(let path, let length):
            for try await chunk in FileChunks(path: path, length: length, chunkSize: fileChunkSize) {
                sent += Int64(chunk.readableBytes)
                try await channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(chunk))).get()
            }
        }
        guard sent == body.length else { throw HTTP1TransportError.bodyLength(sent: sent, declared: body.length) }
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
    }
}
