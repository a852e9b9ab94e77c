import AsyncHTTPClient
import NIOCore
import NIOFileSystem
import NIOHTTP1

/// ``HTTPTransport`` over AsyncHTTPClient: pooled keep-alive connections, TLS, streamed bodies.
public struct AsyncHTTPClientTransport: HTTPTransport {
    let client: HTTPClient

    /// Uses `client`; by default one process-wide client that never needs shutting down.
    public init(client: HTTPClient = Self.sharedClient) { self.client = client }

    /// Bodies exactly as sent (no transparent decompression, so a gzip object downloads byte for byte).
    public static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.decompression = .disabled
        configuration.timeout.connect = .seconds(10)
        configuration.httpVersion = .automatic
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    public func send(_ request: AWSHTTPRequest, timeout: Duration) async throws -> AWSHTTPResponse {
        var outgoing = HTTPClientRequest(url: request.url.description)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers where name.lowercased() != "content-length" {
            outgoing.headers.add(name: name, value: value)
        }
        let deadline = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        switch request.body {
        case .bytes(let buffer):
            if buffer.readableBytes > 0 || ["PUT", "POST", "PATCH"].contains(request.method) { outgoing.body = .bytes(buffer) }
            return try await execute(outgoing, deadline: deadline)
        case .stream(let chunks, let length):
            outgoing.body = .stream(chunks, length: .known(length))
            return try await execute(outgoing, deadline: deadline)
        case .file(let path, let length):
            return try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { file in
                outgoing.body = .stream(file.readChunks(chunkLength: .kibibytes(256)), length: .known(length))
                return try await execute(outgoing, deadline: deadline)
            }
        }
    }

    private func execute(_ request: HTTPClientRequest, deadline: TimeAmount) async throws -> AWSHTTPResponse {
        let response = try await client.execute(request, timeout: deadline)
        return AWSHTTPResponse(
            status: Int(response.status.code),
            headers: response.headers.map { ($0.name, $0.value) },
            body: response.body
        )
    }
}
