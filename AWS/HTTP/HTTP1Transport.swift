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
        // A stream can be sent once: it gets a fresh connection, never one the server may just have closed.
        let channel: any Channel
        if case .stream = request.body {
            channel = try await connect(to: origin, deadline: deadline)
        } else if let idle = pool.take(origin) {
            channel = idle
        } else {
            channel = try await connect(to: origin, deadline: deadline)
        }
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
    private enum Code {
        case connectFailed, closedBeforeResponse, timedOut, stalled, unsupportedScheme, bodyLength
    }

    private let code: Code
    public let description: String

    static func connectFailed(_ detail: String) -> Self { Self(code: .connectFailed, description: "cannot connect to \(detail)") }
    static let closedBeforeResponse = Self(code: .closedBeforeResponse, description: "the connection closed before the response was complete")
    static let timedOut = Self(code: .timedOut, description: "no response before the request's deadline")
    static let stalled = Self(code: .stalled, description: "the response body stalled: no bytes for as long as the request's timeout")
    static func unsupportedScheme(_ scheme: String) -> Self {
        Self(code: .unsupportedScheme, description: "the URL scheme \"\(scheme)\" is neither http nor https")
    }
    static func bodyLength(sent: Int64, declared: Int64) -> Self {
        Self(code: .bodyLength, description: "the request body had \(sent) bytes, but \(declared) were declared")
    }

    /// No response head arrived before the request's deadline.
    public var isTimeout: Bool { code == .timedOut }
}

/// Where a connection goes: scheme, host and port.
struct Origin: Hashable, Sendable, CustomStringConvertible {
    var usesTLS: Bool
    var host: String
    var port: Int

    init(_ url: RequestURL) throws(HTTP1TransportError) {
        switch ASCII.lowercased(url.scheme) {
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
            idle[origin]?.removeAll { !$0.isActive }
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
    private static let nextID = Atomic<Int>(0)

    /// Sends the request and returns once the response head arrived; `onIdle` runs when the response
    /// has been read to its end and the connection can carry another request. Cancelling the task
    /// before the head arrived closes the connection and throws `CancellationError`.
    static func run(
        _ request: AWSHTTPRequest, on channel: any Channel, deadline: NIODeadline, onIdle: @escaping @Sendable () -> Void
    ) async throws -> AWSHTTPResponse {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        do {
            return try await withTaskCancellationHandler {
                try await exchange(id: id, request, on: channel, deadline: deadline, onIdle: onIdle)
            } onCancel: {
                channel.triggerUserOutboundEvent(HTTP1ClientHandler.Cancel(exchange: id), promise: nil)
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
    }

    private static func exchange(
        id: Int, _ request: AWSHTTPRequest, on channel: any Channel, deadline: NIODeadline, onIdle: @escaping @Sendable () -> Void
    ) async throws -> AWSHTTPResponse {
        var headers = HTTPHeaders()
        headers.reserveCapacity(request.headers.count + 2)
        var hasHost = false
        for (name, value) in request.headers {
            switch ASCII.lowercased(name) {
            case "content-length": continue  // written below, from the body
            case "host": hasHost = true
            default: break
            }
            headers.add(name: name, value: value)
        }
        if !hasHost { headers.add(name: "Host", value: request.url.hostHeader) }
        if request.body.length > 0 || ["PUT", "POST", "PATCH"].contains(request.method) {
            headers.add(name: "Content-Length", value: String(request.body.length))
        }
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: request.url.requestTarget, headers: headers)
        var inline: ByteBuffer?
        if case .bytes(let buffer) = request.body { inline = buffer }
        // The head goes out before any of a streamed body: on the channel's own thread at once,
        // from any other thread through the loop's queue, which the body's writes then follow.
        let begin = { @Sendable [inline] () -> EventLoopFuture<HTTP1ClientHandler.ResponseStart> in
            let promise = channel.eventLoop.makePromise(of: HTTP1ClientHandler.ResponseStart.self)
            // A connection that closed meanwhile has no handler left to take the exchange: fail it here.
            let begun = channel.eventLoop.makePromise(of: Void.self)
            begun.futureResult.whenFailure { _ in promise.fail(HTTP1TransportError.closedBeforeResponse) }
            channel.triggerUserOutboundEvent(HTTP1ClientHandler.Begin(exchange: id, response: promise, deadline: deadline, onIdle: onIdle), promise: begun)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let inline {
                if inline.readableBytes > 0 { channel.write(HTTPClientRequestPart.body(.byteBuffer(inline)), promise: nil) }
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            } else {
                channel.flush()
            }
            return promise.futureResult
        }
        let started = channel.eventLoop.inEventLoop ? begin() : channel.eventLoop.flatSubmit(begin)
        if inline == nil {
            do {
                try await writeBody(request.body, to: channel)
            } catch let failure as ChannelWriteFailure {
                // The server may answer and close before taking the whole body (an S3 error, say):
                // then that answer is the result; a deadline that passed is reported as such.
                do {
                    return response(try await started.get())
                } catch let transport as HTTP1TransportError where transport.isTimeout {
                    throw transport
                } catch {
                    throw failure.underlying
                }
            } catch {
                // The body failed on our side: the request is incomplete, so is the connection.
                try? await channel.close()
                _ = try? await started.get()
                throw error
            }
        }
        return response(try await started.get())
    }

    private static func response(_ start: HTTP1ClientHandler.ResponseStart) -> AWSHTTPResponse {
        AWSHTTPResponse(status: Int(start.head.status.code), headers: start.head.headers.map { ($0.name, $0.value) }, body: start.body)
    }

    /// A write the connection refused (as opposed to a body that failed on our side).
    private struct ChannelWriteFailure: Error {
        var underlying: any Error
    }

    private static func write(_ chunk: ByteBuffer, to channel: any Channel) async throws {
        do {
            try await channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(chunk))).get()
        } catch {
            throw ChannelWriteFailure(underlying: error)
        }
    }

    private static func writeBody(_ body: RequestBody, to channel: any Channel) async throws {
        var sent: Int64 = 0
        let declared = body.length
        func take(_ chunk: ByteBuffer) async throws {
            sent += Int64(chunk.readableBytes)
            guard sent <= declared else { throw HTTP1TransportError.bodyLength(sent: sent, declared: declared) }
            try await write(chunk, to: channel)
        }
        switch body {
        case .bytes:
            return
        case .stream(let chunks, _):
            for try await chunk in chunks where chunk.readableBytes > 0 { try await take(chunk) }
        case .file(let path, let length):
            for try await chunk in FileChunks(path: path, length: length, chunkSize: fileChunkSize) { try await take(chunk) }
        }
        guard sent == declared else { throw HTTP1TransportError.bodyLength(sent: sent, declared: declared) }
        do {
            try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        } catch {
            throw ChannelWriteFailure(underlying: error)
        }
    }
}
