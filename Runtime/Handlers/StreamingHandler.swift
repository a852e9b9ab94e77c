import FoundationEssentials
import NIOCore

/// A handler that streams its response: chunks reach the caller as the handler writes them.
///
/// ```swift
/// struct Tokens: StreamingHandler {
///     func handle(_ event: ByteBuffer, response: ResponseStream, context: InvocationContext) async throws {
///         try await response.writeHTTPHead(statusCode: 200, headers: ["content-type": "text/plain"])
///         for token in ["Hello", ", ", "world"] { try await response.write(token) }
///     }
/// }
/// ```
/// A thrown error after the first chunk reaches the caller as a function error (Lambda's error trailers).
public protocol StreamingHandler: Sendable {
    func handle(_ event: ByteBuffer, response: ResponseStream, context: InvocationContext) async throws
}

/// Where a ``StreamingHandler`` writes. The runtime posts it to Lambda with
/// `Lambda-Runtime-Function-Response-Mode: streaming` and chunked transfer encoding.
public final class ResponseStream: @unchecked Sendable {
    /// Lambda's content type for a streamed HTTP response: a JSON prelude, eight NUL bytes, the body.
    public static let httpIntegrationContentType = "application/vnd.awslambda.http-integration-response"
    /// Lambda's limit on a streamed response (200 MiB since July 2025).
    public static let maxSize = 200 * 1024 * 1024

    /// Sends the request head (with the content type) on the first write; then each chunk.
    let sink: any ResponseStreamSink
    private(set) var started = false
    private(set) var bytesWritten = 0
    private var contentType = "application/octet-stream"

    init(sink: any ResponseStreamSink) { self.sink = sink }

    /// Sets the content type of the stream; only before the first write.
    public func setContentType(_ contentType: String) {
        precondition(!started, "setContentType must come before the first write")
        self.contentType = contentType
    }

    /// Writes the status, headers and cookies of an HTTP response (API Gateway, function URLs): the
    /// prelude Lambda expects before the body. Call it once, before any other write.
    public func writeHTTPHead(statusCode: Int, headers: [String: String] = [:], cookies: [String] = []) async throws {
        precondition(!started, "writeHTTPHead must be the first write")
        contentType = Self.httpIntegrationContentType
        struct Prelude: Encodable {
            var statusCode: Int
            var headers: [String: String]
            var cookies: [String]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var prelude = ByteBuffer(bytes: try encoder.encode(Prelude(statusCode: statusCode, headers: headers, cookies: cookies)))
        prelude.writeRepeatingByte(0, count: 8)
        try await write(prelude)
    }

    /// Writes one chunk, as it is.
    public func write(_ chunk: ByteBuffer) async throws {
        if !started {
            started = true
            try await sink.start(contentType: contentType)
        }
        bytesWritten += chunk.readableBytes
        guard bytesWritten <= Self.maxSize else { throw StreamedResponseTooLarge(limit: Self.maxSize) }
        if chunk.readableBytes > 0 { try await sink.write(chunk) }
    }

    /// Writes a string as UTF-8.
    public func write(_ text: String) async throws {
        try await write(ByteBuffer(string: text))
    }
}

/// A streamed response went past Lambda's limit.
public struct StreamedResponseTooLarge: Error, CustomStringConvertible {
    public var limit: Int
    public var description: String { "The streamed response exceeded the maximum size of \(limit) bytes" }
}

/// What a ``ResponseStream`` writes to: the Runtime API client's streaming request.
protocol ResponseStreamSink: Sendable {
    func start(contentType: String) async throws
    func write(_ chunk: ByteBuffer) async throws
}

/// Registers a ``StreamingHandler`` as a ``ByteHandler``: the loop streams its response; called as
/// a plain handler (by a client that cannot stream), it collects the chunks.
public struct StreamingHandlerAdapter: ByteHandler {
    public let handler: any StreamingHandler

    public init(_ handler: any StreamingHandler) { self.handler = handler }

    public func handle(_ event: ByteBuffer, context: InvocationContext) async throws -> ByteBuffer {
        let collector = CollectingSink()
        try await handler.handle(event, response: ResponseStream(sink: collector), context: context)
        return collector.collected
    }
}

/// Collects a stream into one buffer.
final class CollectingSink: ResponseStreamSink, @unchecked Sendable {
    private(set) var collected = ByteBuffer()
    private(set) var contentType: String?

    func start(contentType: String) async throws { self.contentType = contentType }

    func write(_ chunk: ByteBuffer) async throws {
        var chunk = chunk
        collected.writeBuffer(&chunk)
    }
}
