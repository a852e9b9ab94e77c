import Foundation
import Logging
import MartletAWS
import NIOCore
import NIOHTTP1

/// The local AWS endpoint: one port that routes as AWS does — `X-Amz-Target` for the JSON protocols
/// (SQS, DynamoDB), `/2015-03-31/functions/…` for Lambda's Invoke API, S3's paths and hosts for the
/// rest — after verifying the request's SigV4 signature against the local credentials.
///
/// ```swift
/// let database = try SQLiteDatabase(path: ".martlet/state.sqlite")
/// let endpoint = try LocalEndpoint(database: database, objectsFolder: ".martlet/s3", logger: logger)
/// try await endpoint.run(port: 4566)
/// ```
public struct LocalEndpoint: Sendable {
    /// JSON-protocol requests larger than this are refused (S3 uploads stream instead).
    public static let maxBodySize = 16 * 1024 * 1024

    public let verifier: SignatureVerifier
    public let sqs: SQSService
    public let dynamoDB: DynamoDBService
    public let s3: S3Service
    let invokeAPI: InvokeAPIEndpoint?
    let database: SQLiteDatabase
    let logger: Logger

    /// `objectsFolder` holds S3's object files (`<data>/s3`); the database holds everything else.
    public init(
        database: SQLiteDatabase, objectsFolder: String, credentials: LocalCredentials = .default, region: String = "us-east-1",
        invoker: (any FunctionInvoker)? = nil, logger: Logger
    ) throws {
        self.database = database
        verifier = SignatureVerifier(credentials: credentials)
        sqs = try SQSService(database: database, region: region)
        dynamoDB = try DynamoDBService(database: database, region: region)
        s3 = try S3Service(database: database, objectsFolder: objectsFolder, verifier: verifier, region: region, logger: logger)
        invokeAPI = invoker.map { InvokeAPIEndpoint(invoker: $0, logger: logger) }
        self.logger = logger
    }

    /// Serves on `host:port` until cancelled, sweeping expired DynamoDB items every second;
    /// `onListening` gets the bound address.
    public func run(host: String = "127.0.0.1", port: Int = 4566, onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }) async throws {
        let server = HTTPServer(
            host: host, port: port, maxBodySize: Self.maxBodySize,
            streaming: .init(claims: { Self.isS3($0) }, handler: { request, body in await s3.answer(request, body: body) }), logger: logger
        ) { request in await self.answer(request) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run(onListening: onListening) }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(1))
                    do { try dynamoDB.sweepExpiredItems() } catch { logger.warning("TTL sweep failed", metadata: ["error": "\(error)"]) }
                    s3.sweep()
                    do { try database.checkpoint() } catch { logger.warning("Checkpoint failed", metadata: ["error": "\(error)"]) }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Answers one request.
    public func answer(_ request: HTTPServerRequest) async -> HTTPServerResponse {
        let requestID = RequestID.make()
        if let target = request.headers.first(name: "X-Amz-Target") {
            let parts = target.split(separator: ".", maxSplits: 1)
            let prefix = parts.first.map(String.init) ?? ""
            let operation = parts.count > 1 ? String(parts[1]) : ""
            switch prefix {
            case "AmazonSQS":
                // Too large to read, so too large to verify: refused first, as AWS's front end does.
                if request.bodyTooLarge { return Self.tooLarge(request, service: .sqs).response(requestID: requestID) }
                if let failure = authenticate(request, service: .sqs) { return failure.response(requestID: requestID) }
                return await sqs.handle(operation: operation, body: request.body, host: request.headers.first(name: "Host") ?? "localhost:4566", requestID: requestID)
            case "DynamoDB_20120810":
                // Too large to read, so too large to verify: refused first, as AWS's front end does.
                if request.bodyTooLarge { return Self.tooLarge(request, service: .dynamoDB).response(requestID: requestID) }
                if let failure = authenticate(request, service: .dynamoDB) { return failure.response(requestID: requestID) }
                return await dynamoDB.handle(operation: operation, body: request.body, requestID: requestID)
            default:
                return JSONProtocolError(type: "com.amazon.coral.service#UnknownOperationException", message: "Unknown target \(target)").response(requestID: requestID)
            }
        }
        if let invokeAPI, InvokeAPIEndpoint.serves(request.path) {
            if let failure = authenticate(request, service: .lambda) {
                var headers: HTTPHeaders = ["x-amzn-RequestId": requestID, "x-amzn-ErrorType": failure.code]
                headers.add(name: "Content-Type", value: "application/json")
                return .json(failure.status, "{\"message\":\(String(decoding: try! JSONEncoder().encode(failure.message), as: UTF8.self))}", headers: headers)
            }
            return await invokeAPI.answer(request)
        }
        // S3 (part 2) and `@connections` (the gateway) are served elsewhere.
        return HTTPServerResponse(
            status: .notImplemented, headers: ["Content-Type": "application/xml", "x-amz-request-id": requestID],
            body: ByteBuffer(string: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message><RequestId>\(requestID)</RequestId></Error>")
        )
    }

    /// Requests that are S3's: everything that is not a JSON-protocol call, Lambda's Invoke API or `@connections`.
    /// They stream, so uploads never sit in memory.
    static func isS3(_ head: HTTPRequestHead) -> Bool {
        head.headers.first(name: "X-Amz-Target") == nil && !InvokeAPIEndpoint.serves(Substring(head.uri)) && !head.uri.hasPrefix("/@connections")
    }

    enum Service { case sqs, dynamoDB, lambda }

    /// The refusal AWS sends for a request that fails authentication, in the service's protocol.
    func authenticate(_ request: HTTPServerRequest, service: Service) -> JSONProtocolError? {
        guard case .failure(let failure) = verifier.verify(request) else { return nil }
        logger.debug("Refused a request", metadata: ["reason": "\(failure.kind)"])
        let code: String
        let status: HTTPResponseStatus
        switch (service, failure.kind) {
        case (_, .missing): (code, status) = ("MissingAuthenticationTokenException", service == .dynamoDB ? .badRequest : .forbidden)
        case (_, .malformed): (code, status) = ("IncompleteSignatureException", service == .dynamoDB ? .badRequest : .forbidden)
        case (.dynamoDB, .unknownAccessKey), (.dynamoDB, .invalidToken): (code, status) = ("UnrecognizedClientException", .badRequest)
        case (.dynamoDB, _): (code, status) = ("InvalidSignatureException", .badRequest)
        case (.lambda, .unknownAccessKey), (.lambda, .invalidToken): (code, status) = ("UnrecognizedClientException", .forbidden)
        case (.lambda, _): (code, status) = ("InvalidSignatureException", .forbidden)
        case (.sqs, .unknownAccessKey), (.sqs, .invalidToken): (code, status) = ("InvalidClientTokenId", .forbidden)
        case (.sqs, _): (code, status) = ("SignatureDoesNotMatch", .forbidden)
        }
        return JSONProtocolError(status: status, type: "com.amazon.coral.service#\(code)", message: failure.message, queryError: service == .sqs ? code : nil)
    }

    static func tooLarge(_ request: HTTPServerRequest, service: Service) -> JSONProtocolError {
        JSONProtocolError(
            status: .payloadTooLarge, type: "com.amazon.coral.service#RequestEntityTooLarge",
            message: "Request of \(request.bodyLength) bytes exceeds the limit of \(maxBodySize) bytes", queryError: service == .sqs ? "RequestEntityTooLarge" : nil
        )
    }
}
