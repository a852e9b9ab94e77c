import Logging
import MartletRuntime
import NIOCore
import NIOHTTP1
import NIOPosix
import _NIOFileSystem

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
    /// When set, the body is this slice of a file, streamed from disk instead of `body`.
    public var file: FileSlice?
    /// The answer to a HEAD request: `Content-Length` is kept as the handler set it, and no body is sent.
    public var isHead = false
    /// When set, the body is sent chunk by chunk as the stream yields (chunked transfer encoding);
    /// a stream that fails cuts the connection, so the client sees the response broke off.
    public var bodyStream: AsyncThrowingStream<ByteBuffer, any Error>?

    /// A byte range of a file on disk.
    public struct FileSlice: Sendable {
        public var path: String
        public var offset: Int64
        public var length: Int64

        public init(path: String, offset: Int64, length: Int64) {
            self.path = path
            self.offset = offset
            self.length = length
        }
    }

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer(), file: FileSlice? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.file = file
    }

    /// A JSON response.
    public static func json(_ status: HTTPResponseStatus, _ json: String, headers: HTTPHeaders = [:]) -> Self {
        var headers = headers
        headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        return .init(status: status, headers: headers, body: ByteBuffer(string: json))
    }
}

/// A request body read as it arrives, for handlers that must not hold a whole body in memory
/// (S3 uploads). Reading it sends `100 Continue` first when the client asked for it.
public final class HTTPRequestBodyStream {
    typealias Inbound = NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator
    typealias Outbound = NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    var iterator: Inbound
    private let outbound: Outbound
    private var continueNeeded: Bool
    /// The whole body has been read.
    public private(set) var isFinished = false
    /// Body bytes read so far.
    public private(set) var bytesRead = 0
    /// The trailers that ended a chunked body, if any.
    public private(set) var trailers: HTTPHeaders?

    init(iterator: Inbound, outbound: Outbound, expectsContinue: Bool) {
        self.iterator = iterator
        self.outbound = outbound
        self.continueNeeded = expectsContinue
    }

    /// The next piece of the body, or `nil` at its end.
    public func next() async throws -> ByteBuffer? {
        if isFinished { return nil }
        if continueNeeded {
            continueNeeded = false
            try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .continue)))
        }
        while let part = try await iterator.next() {
            switch part {
            case .body(let chunk):
                bytesRead += chunk.readableBytes
                return chunk
            case .end(let trailers):
                isFinished = true
                self.trailers = trailers
                return nil
            case .head:
                throw HTTPServerError.unexpectedHead
            }
        }
        isFinished = true
        throw HTTPServerError.connectionClosed
    }

    /// Reads the rest of the body into one buffer; more than `limit` bytes throws `tooLarge`.
    public func collect(upTo limit: Int) async throws -> ByteBuffer {
        var whole = ByteBuffer()
        while var chunk = try await next() {
            guard whole.readableBytes + chunk.readableBytes <= limit else { throw HTTPServerError.bodyTooLarge }
            whole.writeBuffer(&chunk)
        }
        return whole
    }
}

/// Why a streamed request body could not be read.
public enum HTTPServerError: Error, Sendable {
    case connectionClosed
    case unexpectedHead
    case bodyTooLarge
}

/// A small HTTP/1.1 server on SwiftNIO with keep-alive, bounded bodies and one task per connection.
///
/// It runs until its task is cancelled; the bound address is reported through `onListening`,
/// so tests bind port 0 and never sleep. Requests the `streaming` route claims get their body
/// as a stream instead of a buffer, and responses can stream a file from disk.
public struct HTTPServer: Sendable {
    /// Answers one request.
    public typealias Handler = @Sendable (HTTPServerRequest) async -> HTTPServerResponse
    /// Answers one request whose body it reads itself (`request.body` is empty).
    public typealias StreamingHandler = @Sendable (HTTPServerRequest, HTTPRequestBodyStream) async -> HTTPServerResponse

    /// Which requests stream, and who answers them.
    public struct StreamingRoute: Sendable {
        public var claims: @Sendable (HTTPRequestHead) -> Bool
        public var handler: StreamingHandler

        public init(claims: @escaping @Sendable (HTTPRequestHead) -> Bool, handler: @escaping StreamingHandler) {
            self.claims = claims
            self.handler = handler
        }
    }

    public var host: String
    public var port: Int
    /// Bodies longer than this are drained and dropped, and the handler sees `bodyTooLarge`.
    public var maxBodySize: Int
    private let handler: Handler
    private let streaming: StreamingRoute?
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup

    /// An unread streamed body up to this size is drained to keep the connection; a larger one closes it.
    static let drainLimit = 1 << 20
    /// Files are sent in chunks of this size.
    static let fileChunkSize = 1 << 20

    public init(
        host: String = "127.0.0.1", port: Int = 0, maxBodySize: Int, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        streaming: StreamingRoute? = nil, logger: Logger, handler: @escaping Handler
    ) {
        self.eventLoopGroup = eventLoopGroup
        self.host = host
        self.port = port
        self.maxBodySize = maxBodySize
        self.streaming = streaming
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
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
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

    func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                var length = 0
                while let part = try await iterator.next() {
                    switch part {
                    case .head(let requestHead):
                        if let streaming, streaming.claims(requestHead) {
                            let expectsContinue = requestHead.headers.first(name: "Expect")?.lowercased() == "100-continue"
                            let stream = HTTPRequestBodyStream(iterator: iterator, outbound: outbound, expectsContinue: expectsContinue)
                            let request = HTTPServerRequest(method: requestHead.method, uri: requestHead.uri, headers: requestHead.headers)
                            let response = await streaming.handler(request, stream)
                            iterator = stream.iterator
                            var keepAlive = requestHead.isKeepAlive
                            if !stream.isFinished {
                                // Unread body: drain a small one (or the empty body of a GET), close the connection on a large one.
                                let chunked = requestHead.headers[canonicalForm: "Transfer-Encoding"].contains { $0.lowercased() == "chunked" }
                                let declared = requestHead.headers.first(name: "Content-Length").flatMap(Int.init)
                                let remaining = declared.map { $0 - stream.bytesRead } ?? (chunked ? Int.max : 0)
                                if remaining > 0, expectsContinue, stream.bytesRead == 0 {
                                    keepAlive = false
                                } else if remaining <= Self.drainLimit {
                                    while try await stream.next() != nil {}
                                    iterator = stream.iterator
                                } else {
                                    keepAlive = false
                                }
                            }
                            try await write(response, to: outbound, version: requestHead.version, keepAlive: keepAlive)
                            if !keepAlive { return }
                            continue
                        }
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
                        let response = await handler(request)
                        let keepAlive = requestHead.isKeepAlive
                        try await write(response, to: outbound, version: requestHead.version, keepAlive: keepAlive)
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

    private func write(
        _ response: HTTPServerResponse, to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, version: HTTPVersion, keepAlive: Bool
    ) async throws {
        var headers = response.headers
        if let stream = response.bodyStream, !response.isHead {
            headers.remove(name: "Content-Length")
            headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
            try await outbound.write(.head(HTTPResponseHead(version: version, status: response.status, headers: headers)))
            for try await chunk in stream where chunk.readableBytes > 0 {
                try await outbound.write(.body(.byteBuffer(chunk)))
            }
            try await outbound.write(.end(nil))
            return
        }
        if !response.isHead {
            headers.replaceOrAdd(name: "Content-Length", value: String(response.file?.length ?? Int64(response.body.readableBytes)))
        }
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: response.status, headers: headers)
        guard let file = response.file, !response.isHead else {
            try await outbound.write(contentsOf: [.head(head), .body(.byteBuffer(response.isHead ? ByteBuffer() : response.body)), .end(nil)])
            return
        }
        try await outbound.write(.head(head))
        try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(file.path)) { handle in
            let range = file.offset..<(file.offset + file.length)
            for try await chunk in handle.readChunks(in: range, chunkLength: .bytes(Int64(Self.fileChunkSize))) {
                try await outbound.write(.body(.byteBuffer(chunk)))
            }
        }
        try await outbound.write(.end(nil))
    }
}
