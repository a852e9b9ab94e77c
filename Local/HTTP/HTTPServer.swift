import Logging
import MartletRuntime
import NIOCore
import NIOHTTP1
import NIOPosix

/// A request as the local servers see it: head and whole body (bounded by the server's limit).
public struct HTTPServerRequest: Sendable {
    public var method: HTTPMethod
    /// The request target as sent, path and query.
    public var uri: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    /// The body was longer than the server's limit; `body` is empty and the handler should answer 413.
    public var bodyTooLarge: Bool
    /// How many body bytes arrived, even when they were dropped for being too many.
    public var bodyLength: Int

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer(), bodyTooLarge: Bool = false, bodyLength: Int? = nil) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        self.bodyTooLarge = bodyTooLarge
        self.bodyLength = bodyLength ?? body.readableBytes
    }

    /// The path, without the query.
    public var path: Substring { uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0] }

    /// The raw query string, without `?`.
    public var query: Substring? {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return parts.count > 1 ? parts[1] : nil
    }
}

/// A response from a local server.
public struct HTTPServerResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response.
    public static func json(_ status: HTTPResponseStatus, _ json: String, headers: HTTPHeaders = [:]) -> Self {
        var headers = headers
        headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        return .init(status: status, headers: headers, body: ByteBuffer(string: json))
    }
}

/// A small HTTP/1.1 server on SwiftNIO with keep-alive, bounded bodies and one task per connection.
///
/// It runs until its task is cancelled; the bound address is reported through `onListening`,
/// so tests bind port 0 and never sleep.
public struct HTTPServer: Sendable {
    /// Answers one request.
    public typealias Handler = @Sendable (HTTPServerRequest) async -> HTTPServerResponse

    public var host: String
    public var port: Int
    /// Bodies longer than this are drained and dropped, and the handler sees `bodyTooLarge`.
    public var maxBodySize: Int
    private let handler: Handler
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup

    public init(
        host: String = "127.0.0.1", port: Int = 0, maxBodySize: Int, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger, handler: @escaping Handler
    ) {
        self.eventLoopGroup = eventLoopGroup
        self.host = host
        self.port = port
        self.maxBodySize = maxBodySize
        self.logger = logger
        self.handler = handler
    }

    /// Binds, reports the address, and serves until cancelled.
    public func run(onListening: @Sendable (SocketAddress) -> Void = { _ in }) async throws {
        typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
        let server = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try Connection(wrappingChannelSynchronously: channel)
                }
            }
        if let address = server.channel.localAddress { onListening(address) }
        try await withTaskCancellationHandler {
            try await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        // Serve each connection on its own event loop thread: no hop per request.
                        group.addTask(executorPreference: EventLoopTaskExecutor(connection.channel.eventLoop)) { await serve(connection) }
                    }
                }
            }
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                var length = 0
                for try await part in inbound {
                    switch part {
                    case .head(let requestHead):
                        head = requestHead
                        body.clear()
                        length = 0
                    case .body(var chunk):
                        length += chunk.readableBytes
                        if length <= maxBodySize { body.writeBuffer(&chunk) }
                    case .end:
                        guard let requestHead = head else { continue }
                        let tooLarge = length > maxBodySize
                        let request = HTTPServerRequest(
                            method: requestHead.method, uri: requestHead.uri, headers: requestHead.headers,
                            body: tooLarge ? ByteBuffer() : body, bodyTooLarge: tooLarge, bodyLength: length
                        )
                        var response = await handler(request)
                        let keepAlive = requestHead.isKeepAlive
                        response.headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
                        if !keepAlive { response.headers.replaceOrAdd(name: "Connection", value: "close") }
                        let responseHead = HTTPResponseHead(version: requestHead.version, status: response.status, headers: response.headers)
                        try await outbound.write(contentsOf: [
                            .head(responseHead), .body(.byteBuffer(response.body)), .end(nil),
                        ])
                        head = nil
                        if !keepAlive { return }
                    }
                }
            }
        } catch {
            // One connection's failure never stops the server.
            logger.debug("Connection ended with an error", metadata: ["error": "\(error)"])
        }
    }
}
