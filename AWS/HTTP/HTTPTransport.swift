import NIOCore

/// One HTTP request of an AWS call, signed and ready to send.
public struct AWSHTTPRequest: Sendable {
    public var method: String
    public var url: RequestURL
    public var headers: [(name: String, value: String)]
    public var body: RequestBody

    public init(method: String, url: RequestURL, headers: [(name: String, value: String)], body: RequestBody = .empty) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// The first value of a header.
    public func header(_ name: String) -> String? {
        headers.first { ASCII.equalsIgnoringCase($0.name, name) }?.value
    }
}

/// A request body: bytes in memory, a file read in chunks, or a one-shot stream of known length.
public enum RequestBody: Sendable {
    case bytes(ByteBuffer)
    /// A file, read in chunks when sent (and again on a retry).
    case file(path: String, length: Int64)
    /// Chunks from a sequence that can be read once (a retry is impossible once it has started).
    case stream(any AsyncSequence<ByteBuffer, any Error> & Sendable, length: Int64)

    public static let empty = RequestBody.bytes(ByteBuffer())

    /// The number of bytes.
    public var length: Int64 {
        switch self {
        case .bytes(let buffer): Int64(buffer.readableBytes)
        case .file(_, let length), .stream(_, let length): length
        }
    }

    /// Whether the body can be sent a second time.
    var isReplayable: Bool {
        if case .stream = self { return false }
        return true
    }
}

/// An HTTP response whose body arrives in chunks.
public struct AWSHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: any AsyncSequence<ByteBuffer, any Error> & Sendable

    public init(status: Int, headers: [(name: String, value: String)], body: any AsyncSequence<ByteBuffer, any Error> & Sendable) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header.
    public func header(_ name: String) -> String? {
        headers.first { ASCII.equalsIgnoringCase($0.name, name) }?.value
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    public func collect(upTo limit: Int) async throws -> ByteBuffer {
        var collected = ByteBuffer()
        for try await var chunk in body {
            guard collected.readableBytes + chunk.readableBytes <= limit else {
                throw AWSClientError.invalidResponse("the response body is larger than \(limit) bytes")
            }
            collected.writeBuffer(&chunk)
        }
        return collected
    }
}

/// Sends HTTP requests: ``HTTP1Transport`` in production, a scripted server or an in-memory fake in tests.
public protocol HTTPTransport: Sendable {
    /// Sends one request; throws only when no response arrived.
    func send(_ request: AWSHTTPRequest, timeout: Duration) async throws -> AWSHTTPResponse
}

/// A body of chunks already in memory.
struct BufferedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    typealias Failure = any Error
    let chunks: [ByteBuffer]

    struct AsyncIterator: AsyncIteratorProtocol {
        var iterator: IndexingIterator<[ByteBuffer]>
        mutating func next() async throws -> ByteBuffer? { iterator.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(iterator: chunks.makeIterator()) }
}
