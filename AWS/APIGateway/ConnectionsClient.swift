import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The connection is gone (closed, or never existed): API Gateway answered 410. Stop sending to it.
public struct ConnectionGoneError: Error, Sendable, Equatable, CustomStringConvertible {
    public var connectionID: String
    public var requestID: String?
    public var description: String { "WebSocket connection \(connectionID) is gone" }
}

/// What API Gateway knows of a connection.
public struct ConnectionInfo: Sendable, Equatable, Decodable {
    public struct Identity: Sendable, Equatable, Decodable {
        public var sourceIp: String?
        public var userAgent: String?
    }
    public var connectedAt: AWSTimestamp?
    public var lastActiveAt: AWSTimestamp?
    public var identity: Identity?

    private enum CodingKeys: String, CodingKey { case connectedAt, lastActiveAt, identity }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        identity = try container.decodeIfPresent(Identity.self, forKey: .identity)
        connectedAt = Self.timestamp(container, .connectedAt)
        lastActiveAt = Self.timestamp(container, .lastActiveAt)
    }

    /// ISO 8601 as API Gateway sends it; epoch seconds as some emulators (moto) do.
    private static func timestamp(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) -> AWSTimestamp? {
        if let text = try? container.decodeIfPresent(String.self, forKey: key) { return AWSTimestamp(iso8601: text) }
        if let seconds = try? container.decodeIfPresent(Double.self, forKey: key) { return AWSTimestamp(secondsSince1970: Int64(seconds)) }
        return nil
    }
}

/// API Gateway's management API for WebSocket connections (`@connections`): push data to a client,
/// look it up, or close it.
///
/// ```swift
/// let connections = try ConnectionsClient(aws, endpoint: "https://\(domain)/\(stage)")
/// do { try await connections.post(Array(json.utf8), to: connectionID) }
/// catch is ConnectionGoneError { /* forget the connection */ }
/// ```
public struct ConnectionsClient: Sendable {
    /// The most data one post carries: 128 KB.
    public static let maxPostSize = 131_072
    public let aws: AWSClient
    /// `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`.
    public let endpoint: RequestURL

    /// `endpoint` is the API's URL with its stage, as a WebSocket event gives it
    /// (`https://` + `requestContext.domainName` + `/` + `requestContext.stage`); `nil` takes
    /// `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` (or `AWS_ENDPOINT_URL`).
    public init(_ aws: AWSClient, endpoint: String? = nil) throws(AWSClientError) {
        self.aws = aws
        if let endpoint {
            guard let url = RequestURL(string: endpoint) else { throw .invalidArgument("the management endpoint \(endpoint) is not an http(s) URL") }
            self.endpoint = url
        } else if let configured = aws.configuration.customEndpoint(for: .apiGatewayManagement) {
            self.endpoint = configured
        } else {
            throw .invalidArgument("no management API endpoint: pass https://{domainName}/{stage} or set AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
        }
    }

    /// Sends data to a connected client (up to 128 KB). Throws ``ConnectionGoneError`` when the
    /// client has gone.
    public func post(_ data: [UInt8], to connectionID: String) async throws {
        guard data.count <= Self.maxPostSize else {
            throw AWSClientError.invalidArgument("PostToConnection carries at most \(Self.maxPostSize) bytes, not \(data.count)")
        }
        _ = try await send("POST", connectionID, body: data)
    }

    /// A connection's details. Throws ``ConnectionGoneError`` when it has gone.
    public func connection(_ connectionID: String) async throws -> ConnectionInfo {
        let body = try await send("GET", connectionID, body: [])
        do {
            return try JSONDecoder().decode(ConnectionInfo.self, from: Data(body.readableBytesView))
        } catch {
            throw AWSClientError.invalidResponse("GetConnection: \(error)")
        }
    }

    /// Closes a connection. Throws ``ConnectionGoneError`` when it has already gone.
    public func delete(_ connectionID: String) async throws {
        _ = try await send("DELETE", connectionID, body: [])
    }

    private func send(_ method: String, _ connectionID: String, body: [UInt8]) async throws -> ByteBuffer {
        guard !connectionID.isEmpty else { throw AWSClientError.invalidArgument("a connection id must not be empty") }
        var url = endpoint
        let base = url.encodedPath.hasSuffix("/") ? String(url.encodedPath.dropLast()) : url.encodedPath
        url.encodedPath = base + "/@connections/" + URIEncoding.encode(connectionID)
        do {
            let response = try await aws.send(
                .apiGatewayManagement, method: method, url: url, body: .bytes(ByteBuffer(bytes: body)), payload: .bytes(body), errors: .json
            )
            return try await response.collect(upTo: 1024 * 1024)
        } catch let error as AWSServiceError where error.status == 410 || error.code == "GoneException" {
            throw ConnectionGoneError(connectionID: connectionID, requestID: error.requestID)
        }
    }
}
