import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// What arrives on a WebSocket connection.
public enum WebSocketEvent: Sendable, Equatable {
    /// A complete text message (fragments joined).
    case text(String)
    /// A complete binary message.
    case binary([UInt8])
    /// The connection ended: the close code the server sent (nil when the connection was lost
    /// without a closing handshake), and its reason.
    case closed(code: Int?, reason: String)
}

/// Why a WebSocket connection could not be opened.
public enum WebSocketClientError: Error, Sendable, CustomStringConvertible {
    /// The URL is not a `ws://` or `wss://` URL.
    case invalidURL(String)
    /// The server answered the opening handshake with an HTTP status instead of switching protocols.
    case refused(status: Int, body: String)
    /// No connection: the host is unreachable, refused the TCP connection, or did not answer in time.
    case unreachable(String)
    /// The connection is closed.
    case closed

    public var description: String {
        switch self {
        case .invalidURL(let url): "not a ws:// or wss:// URL: \(url)"
        case .refused(let status, let body): "the server refused the WebSocket connection with HTTP \(status)\(body.isEmpty ? "" : ": \(body)")"
        case .unreachable(let reason): "cannot connect: \(reason)"
        case .closed: "the WebSocket connection is closed"
        }
    }
}

/// A WebSocket client (RFC 6455) over `ws://` or `wss://`, built on SwiftNIO.
///
/// ```swift
/// let connection = try await WebSocketClient.connect(to: "ws://127.0.0.1:3001/?key=abc")
/// try await connection.send(#"{"action":"status","jobId":"…"}"#)
/// for await event in connection.events { … }
/// ```
public enum WebSocketClient {
    /// Opens a connection, sending `headers` with the opening handshake.
    public static func connect(
        to url: String, headers: [(String, String)] = [], maxMessageSize: Int = 1 << 20, connectTimeout: TimeAmount = .seconds(10),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> WebSocketConnection {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), scheme == "ws" || scheme == "wss",
            let host = components.host, !host.isEmpty
        else { throw WebSocketClientError.invalidURL(url) }
        let secure = scheme == "wss"
        let port = components.port ?? (secure ? 443 : 80)
        var target = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { target += "?" + query }
        let sslContext = secure ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil

        var requestHeaders = HTTPHeaders()
        requestHeaders.add(name: "Host", value: components.port.map { "\(host):\($0)" } ?? host)
        requestHeaders.add(name: "Content-Length", value: "0")
        for (name, value) in headers { requestHeaders.add(name: name, value: value) }
        let requestHead = HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: requestHeaders)
        let (events, continuation) = AsyncStream.makeStream(of: WebSocketEvent.self)

        let upgrade: EventLoopFuture<HandshakeResult>
        do {
            upgrade = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            let tls = try NIOSSLClientHandler(context: sslContext, serverHostname: host.first?.isNumber == true ? nil : host)
                            try channel.pipeline.syncOperations.addHandler(tls)
                        }
                        let upgrader = NIOTypedWebSocketClientUpgrader<HandshakeResult>(maxFrameSize: maxMessageSize) { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                let handler = WebSocketFrameHandler(continuation: continuation, maxMessageSize: maxMessageSize)
                                try channel.pipeline.syncOperations.addHandler(handler)
                                return .upgraded(channel)
                            }
                        }
                        let configuration = NIOTypedHTTPClientUpgradeConfiguration<HandshakeResult>(
                            upgradeRequestHead: requestHead, upgraders: [upgrader]
                        ) { channel in
                            channel.eventLoop.makeCompletedFuture {
                                let promise = channel.eventLoop.makePromise(of: (Int, String).self)
                                try channel.pipeline.syncOperations.addHandler(RefusalReader(promise: promise))
                                return .refused(promise.futureResult)
                            }
                        }
                        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                            configuration: .init(upgradeConfiguration: configuration)
                        )
                    }
                }
        } catch {
            continuation.finish()
            let text = "\(error)"
            let reason = text.contains("Connection refused") ? "connection refused" : text.lowercased().contains("timeout") ? "timed out" : text
            throw WebSocketClientError.unreachable("\(host):\(port) (\(reason))")
        }
        let result: HandshakeResult
        do {
            result = try await upgrade.get()
        } catch {
            continuation.finish()
            throw WebSocketClientError.unreachable("the WebSocket handshake with \(host):\(port) failed: \(error)")
        }
        switch result {
        case .upgraded(let channel):
            return WebSocketConnection(channel: channel, events: events)
        case .refused(let answer):
            continuation.finish()
            let (status, body) = try await answer.get()
            throw WebSocketClientError.refused(status: status, body: body)
        }
    }

    enum HandshakeResult: Sendable {
        case upgraded(any Channel)
        case refused(EventLoopFuture<(Int, String)>)
    }
}

/// An open WebSocket connection. Read `events` from one task; `send` from any.
public final class WebSocketConnection: Sendable {
    let channel: any Channel
    /// Messages as they arrive, ending with `.closed`.
    public let events: AsyncStream<WebSocketEvent>

    init(channel: any Channel, events: AsyncStream<WebSocketEvent>) {
        self.channel = channel
        self.events = events
    }

    /// Sends one text message.
    public func send(_ text: String) async throws {
        guard channel.isActive else { throw WebSocketClientError.closed }
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
        try await channel.writeAndFlush(frame)
    }

    /// Starts the closing handshake; the connection ends when the server answers (or in 2 s).
    public func close(code: WebSocketErrorCode = .normalClosure) async {
        guard channel.isActive else { return }
        var data = ByteBuffer()
        data.write(webSocketErrorCode: code)
        try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data))
        let channel = self.channel
        channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        try? await channel.closeFuture.get()
    }

    /// Drops the TCP connection without a closing handshake, as a lost network would.
    public func abort() {
        channel.close(mode: .all, promise: nil)
    }
}

/// Joins fragments into messages, answers pings and the server's close, and ends the event stream.
private final class WebSocketFrameHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let continuation: AsyncStream<WebSocketEvent>.Continuation
    let maxMessageSize: Int
    private var message: (opcode: WebSocketOpcode, data: ByteBuffer)?
    private var closeSent = false
    private var finished = false

    init(continuation: AsyncStream<WebSocketEvent>.Continuation, maxMessageSize: Int) {
        self.continuation = continuation
        self.maxMessageSize = maxMessageSize
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            message = (frame.opcode, frame.unmaskedData)
            if frame.fin { deliver() }
        case .continuation:
            guard var current = message else { return fail(context, .protocolError, "a continuation frame without a message") }
            var fragment = frame.unmaskedData
            current.data.writeBuffer(&fragment)
            message = current
            if current.data.readableBytes > maxMessageSize { return fail(context, .messageTooLarge, "message too large") }
            if frame.fin { deliver() }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self).map(Int.init)
            let reason = data.readString(length: data.readableBytes) ?? ""
            finish(.closed(code: code, reason: reason))
            if !closeSent {
                closeSent = true
                var echo = ByteBuffer()
                if let code { echo.writeInteger(UInt16(code)) }
                let answer = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: echo)
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(answer)).whenComplete { _ in loopBound.value.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        default:
            _ = frame
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
    }

    private func deliver() {
        guard let message else { return }
        self.message = nil
        var data = message.data
        if message.opcode == .text {
            continuation.yield(.text(data.readString(length: data.readableBytes) ?? ""))
        } else {
            continuation.yield(.binary(data.readBytes(length: data.readableBytes) ?? []))
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ code: WebSocketErrorCode, _ reason: String) {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: code)
        closeSent = true
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)))
            .whenComplete { _ in loopBound.value.close(promise: nil) }
        finish(.closed(code: nil, reason: reason))
    }

    private func finish(_ event: WebSocketEvent) {
        guard !finished else { return }
        finished = true
        continuation.yield(event)
        continuation.finish()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.closed(code: nil, reason: "the connection was lost"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.closed(code: nil, reason: "\(error)"))
        context.close(promise: nil)
    }
}

/// Reads the HTTP answer of a refused handshake: its status and (up to 4 KiB of) body.
private final class RefusalReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    let promise: EventLoopPromise<(Int, String)>
    private var answered = false
    private var status = 0
    private var body = ByteBuffer()

    init(promise: EventLoopPromise<(Int, String)>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(var chunk):
            if body.readableBytes < 4096 { body.writeBuffer(&chunk) }
        case .end:
            answer()
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer()
        context.fireChannelInactive()
    }

    private func answer() {
        guard !answered else { return }
        answered = true
        promise.succeed((status, String(buffer: body)))
    }
}
