import NIOCore
import NIOHTTP1
import NIOPosix

/// A Runtime API client over one persistent HTTP/1.1 connection.
///
/// Requests on one client are strictly sequential, as the protocol is; a runtime serving several
/// invocations at once opens one client per concurrent invocation.
public final class HTTPRuntimeAPIClient: RuntimeAPIClient {
    private typealias Channel = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    private let hostHeader: String
    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    private let allocator = ByteBufferAllocator()

    private init(hostHeader: String, inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>, outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>) {
        self.hostHeader = hostHeader
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    /// Connects to `address` (`host:port`, the value of `AWS_LAMBDA_RUNTIME_API`), runs `body`, then closes.
    public static func withConnection<Result>(
        to address: String,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        _ body: (HTTPRuntimeAPIClient) async throws -> Result
    ) async throws -> Result {
        let (host, port) = try parse(address: address)
        // The connection and the code using it share one event loop thread: the task prefers that
        // loop as its executor, so reading a response never hops between threads.
        let loop = eventLoopGroup.next()
        return try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
            try await withConnection(host: host, port: port, address: address, on: loop, body)
        }
    }

    private static func withConnection<Result>(
        host: String, port: Int, address: String, on loop: any EventLoop, _ body: (HTTPRuntimeAPIClient) async throws -> Result
    ) async throws -> Result {
        let channel: Channel
        do {
            let bootstrap = ClientBootstrap(group: loop).channelOption(.socketOption(.tcp_nodelay), value: 1)
            let initializer: @Sendable (any NIOCore.Channel) -> EventLoopFuture<Channel> = { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try Channel(wrappingChannelSynchronously: channel)
                }
            }
            // An IP address (what Lambda gives) connects without a resolver thread: faster cold starts.
            if let ipAddress = try? SocketAddress(ipAddress: host, port: port) {
                channel = try await bootstrap.connect(to: ipAddress, channelInitializer: initializer)
            } else {
                channel = try await bootstrap.connect(host: host, port: port, channelInitializer: initializer)
            }
        } catch {
            throw RuntimeAPIError.connectFailed(address, underlying: error)
        }
        return try await channel.executeThenClose { inbound, outbound in
            let client = HTTPRuntimeAPIClient(hostHeader: address, inbound: inbound, outbound: outbound)
            return try await body(client)
        }
    }

    static func parse(address: String) throws(RuntimeAPIError) -> (host: String, port: Int) {
        guard let colon = address.lastIndex(of: ":"),
            let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port)
        else { throw .invalidAddress(address) }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains("/") else { throw .invalidAddress(address) }
        return (host, port)
    }

    public func nextInvocation() async throws -> Invocation {
        let (head, body) = try await send(.GET, RuntimeAPIPath.next, body: nil, headers: [:])
        guard head.status == .ok else {
            throw RuntimeAPIError.unexpectedStatus(path: RuntimeAPIPath.next, status: head.status.code, body: String(buffer: body))
        }
        return Invocation(metadata: try InvocationMetadata(headers: head.headers), event: body)
    }

    public func reportResponse(_ body: ByteBuffer, for requestID: String) async throws {
        try await post(RuntimeAPIPath.response(requestID), body: body, headers: [:])
    }

    public func reportError(_ error: FunctionError, for requestID: String) async throws {
        try await post(RuntimeAPIPath.error(requestID), body: allocator.buffer(string: error.json), headers: [
            RuntimeAPIHeader.functionErrorType: error.headerValue, "Content-Type": "application/json",
        ])
    }

    public func reportInitError(_ error: FunctionError) async throws {
        try await post(RuntimeAPIPath.initError, body: allocator.buffer(string: error.json), headers: [
            RuntimeAPIHeader.functionErrorType: error.headerValue, "Content-Type": "application/json",
        ])
    }

    public func streamResponse(for requestID: String, _ body: (ResponseStream) async throws -> Void) async throws -> FunctionError? {
        let path = RuntimeAPIPath.response(requestID)
        let sink = StreamingRequest(path: path, hostHeader: hostHeader, outbound: outbound)
        let stream = ResponseStream(sink: sink)
        var failure: FunctionError?
        do {
            try await body(stream)
        } catch {
            failure = FunctionError(error)
        }
        if let failure, !stream.started {
            // Nothing went out yet: an ordinary error report.
            try await reportError(failure, for: requestID)
            return failure
        }
        if !stream.started { try await sink.start(contentType: "application/octet-stream") }
        var trailers: HTTPHeaders?
        if let failure {
            trailers = [
                RuntimeAPIHeader.functionErrorType: failure.headerValue,
                RuntimeAPIHeader.functionErrorBody: Base64.encode(Array(failure.json.utf8)),
            ]
        }
        try await outbound.write(.end(trailers))
        let (head, responseBody) = try await readResponse()
        guard head.status == .accepted || head.status == .ok else {
            throw RuntimeAPIError.unexpectedStatus(path: path, status: head.status.code, body: String(buffer: responseBody))
        }
        return failure
    }

    private func post(_ path: String, body: ByteBuffer, headers: KeyValuePairs<String, String>) async throws {
        let (head, responseBody) = try await send(.POST, path, body: body, headers: headers)
        guard head.status == .accepted || head.status == .ok else {
            throw RuntimeAPIError.unexpectedStatus(path: path, status: head.status.code, body: String(buffer: responseBody))
        }
    }

    private func send(
        _ method: HTTPMethod, _ path: String, body: ByteBuffer?, headers extra: KeyValuePairs<String, String>
    ) async throws -> (HTTPResponseHead, ByteBuffer) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(4 + extra.count)
        headers.add(name: "Host", value: hostHeader)
        headers.add(name: "User-Agent", value: RuntimeInfo.userAgent)
        for (name, value) in extra { headers.add(name: name, value: value) }
        if let body { headers.add(name: "Content-Length", value: String(body.readableBytes)) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        if let body {
            try await outbound.write(contentsOf: [.head(head), .body(.byteBuffer(body)), .end(nil)])
        } else {
            try await outbound.write(contentsOf: [.head(head), .end(nil)])
        }
        return try await readResponse()
    }

    private func readResponse() async throws -> (HTTPResponseHead, ByteBuffer) {
        var responseHead: HTTPResponseHead?
        var body: ByteBuffer?
        while let part = try await inbound.next() {
            switch part {
            case .head(let head):
                responseHead = head
            case .body(var chunk):
                if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
            case .end:
                guard let responseHead else { throw RuntimeAPIError.connectionClosed }
                return (responseHead, body ?? allocator.buffer(capacity: 0))
            }
        }
        throw RuntimeAPIError.connectionClosed
    }
}

/// A streamed `POST …/response`: the head goes out with the first chunk, then chunk by chunk.
private struct StreamingRequest: ResponseStreamSink {
    let path: String
    let hostHeader: String
    let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>

    func start(contentType: String) async throws {
        let headers: HTTPHeaders = [
            "Host": hostHeader, "User-Agent": RuntimeInfo.userAgent, RuntimeAPIHeader.responseMode: "streaming",
            "Transfer-Encoding": "chunked", "Content-Type": contentType,
            "Trailer": "\(RuntimeAPIHeader.functionErrorType), \(RuntimeAPIHeader.functionErrorBody)",
        ]
        try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)))
    }

    func write(_ chunk: ByteBuffer) async throws {
        try await outbound.write(.body(.byteBuffer(chunk)))
    }
}

/// Facts about this runtime, for headers and logs.
public enum RuntimeInfo {
    public static let version = "0.1.0"
    public static let userAgent = "martlet-runtime/\(version)"
}

/// Runs tasks on a NIO event loop, so that code driving a channel runs on the channel's own thread.
public final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}
