import Foundation
import Logging
import MartletAWS
import MartletJSON
import MartletRuntime
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// API Gateway's WebSocket API in front of local functions: `$connect` runs during the upgrade and
/// can refuse it (its status goes to the client), messages are routed by the route selection
/// expression (else `$default`), `$disconnect` is delivered on every close — the client's, an error,
/// the 10-minute idle timeout, the 2-hour limit, `DeleteConnection` — and the frame (32 KB) and
/// message (128 KB) limits close the connection with 1009. The `@connections` management API is
/// served on the same port, with SigV4 checked.
public final class WebSocketGateway: Sendable {
    public struct Configuration: Sendable {
        public var routeSelectionExpression: String
        /// Route key → function.
        public var routes: [String: String]
        /// Route keys with a `$default` route response: the integration's `body` goes back to the client.
        public var twoWayRoutes: Set<String>
        public var stage: String
        public var apiID: String
        public var maxFrameSize = 32 * 1024
        public var maxMessageSize = 128 * 1024
        public var idleTimeout: Duration = .seconds(600)
        public var maxDuration: Duration = .seconds(7200)
        public var integrationTimeout: Duration = .seconds(29)

        public init(routeSelectionExpression: String, routes: [String: String], stage: String, apiID: String, twoWayRoutes: Set<String> = []) {
            self.routeSelectionExpression = routeSelectionExpression
            self.routes = routes
            self.twoWayRoutes = twoWayRoutes
            self.stage = stage
            self.apiID = apiID
        }
    }

    public let configuration: Configuration
    let verifier: SignatureVerifier
    let invoke: FunctionInvocation
    let logger: Logger
    let connections = Mutex<[String: Connection]>([:])
    /// Handshakes in progress, by channel: the connection id chosen and, when `$connect` refused, the status to answer.
    private let handshakes = Mutex<[ObjectIdentifier: Handshake]>([:])

    struct Handshake {
        var connectionID: String
        var identity: (sourceIp: String, userAgent: String?)
        var connectedAt: Int64
    }

    struct Connection: Sendable {
        var outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
        var channel: any Channel
        var connectedAt: Int64
        var lastActiveAt: Int64
        var sourceIp: String
        var userAgent: String?
    }

    enum Upgrade: Sendable {
        case webSocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, String)
        case http(NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>)
    }

    public init(configuration: Configuration, verifier: SignatureVerifier, logger: Logger, invoke: @escaping FunctionInvocation) {
        self.configuration = configuration
        self.verifier = verifier
        self.logger = logger
        self.invoke = invoke
    }

    /// Connections open now.
    public var connectionCount: Int { connections.withLock { $0.count } }

    // MARK: Server

    public func run(host: String = "127.0.0.1", port: Int, onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 4096)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketServerUpgrader<Upgrade>(
                        maxFrameSize: self.configuration.maxFrameSize,
                        shouldUpgrade: { channel, head in self.shouldUpgrade(channel, head) },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                let id = self.handshakes.withLock { $0[ObjectIdentifier(channel)]?.connectionID } ?? ""
                                return Upgrade.webSocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel), id)
                            }
                        }
                    )
                    let configuration = NIOTypedHTTPServerUpgradeConfiguration(
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in
                            channel.eventLoop.makeCompletedFuture { Upgrade.http(try NIOAsyncChannel(wrappingChannelSynchronously: channel)) }
                        }
                    )
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: .init(upgradeConfiguration: configuration))
                }
            }
        if let address = server.channel.localAddress { onListening(address) }
        let http = HTTPServer(maxBodySize: 256 * 1024, logger: logger) { request in await self.answerHTTP(request) }
        try await withTaskCancellationHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await negotiation in inbound {
                        // Each connection is served on its own event loop thread: no hop per frame.
                        group.addTask(executorPreference: EventLoopTaskExecutor(negotiation.eventLoop)) {
                            do {
                                switch try await negotiation.get() {
                                case .webSocket(let channel, let id): await self.serve(channel, connectionID: id)
                                case .http(let channel): await http.serve(channel)
                                }
                            } catch {
                                self.logger.debug("Handshake failed", metadata: ["error": "\(error)"])
                            }
                        }
                    }
                }
            }
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    /// Runs `$connect`; refuses the upgrade when it fails or answers non-2xx.
    private func shouldUpgrade(_ channel: any Channel, _ head: HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?> {
        let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
        let connectionID = Self.makeConnectionID()
        let key = ObjectIdentifier(channel)
        let sourceIp = channel.remoteAddress?.ipAddress ?? "127.0.0.1"
        let now = WallClock.nowMilliseconds
        handshakes.withLock { $0[key] = Handshake(connectionID: connectionID, identity: (sourceIp, head.headers.first(name: "User-Agent")), connectedAt: now) }
        channel.closeFuture.whenComplete { _ in _ = self.handshakes.withLock { $0.removeValue(forKey: key) } }
        Task {
            let event = self.event(routeKey: "$connect", type: .connect, connectionID: connectionID, connectedAt: now, head: head, sourceIp: sourceIp)
            let refusal: (Int, String?)?
            if let function = self.configuration.routes["$connect"] {
                let report = await self.invoke(function, event, self.configuration.integrationTimeout, nil)
                switch report?.outcome {
                case .success(let body, _)?:
                    let status = Self.statusCode(of: body)
                    refusal = (200..<300).contains(status) ? nil : (status, Self.body(of: body))
                default: refusal = (500, #"{"message": "Internal server error"}"#)
                }
            } else {
                refusal = nil
            }
            if let refusal {
                // Refused: the handshake's answer is `$connect`'s status (and body); then the connection closes.
                let body = ByteBuffer(string: refusal.1 ?? "")
                let head = HTTPResponseHead(
                    version: head.version, status: HTTPResponseStatus(statusCode: refusal.0),
                    headers: ["Content-Length": String(body.readableBytes), "Content-Type": "application/json", "Connection": "close"]
                )
                channel.eventLoop.execute {
                    channel.write(HTTPServerResponsePart.head(head), promise: nil)
                    channel.write(HTTPServerResponsePart.body(.byteBuffer(body)), promise: nil)
                    channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
                }
                promise.succeed(nil)
            } else {
                promise.succeed(HTTPHeaders())
            }
        }
        return promise.futureResult
    }

    // MARK: Connections

    private func serve(_ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, connectionID: String) async {
        let handshake = handshakes.withLock { $0[ObjectIdentifier(channel.channel)] }
        var closeCode: Int = 1006
        var closeReason = "Going away"
        do {
            try await channel.executeThenClose { inbound, outbound in
                let connectedAt = handshake?.connectedAt ?? WallClock.nowMilliseconds
                connections.withLock {
                    $0[connectionID] = Connection(
                        outbound: outbound, channel: channel.channel, connectedAt: connectedAt, lastActiveAt: connectedAt,
                        sourceIp: handshake?.identity.sourceIp ?? "127.0.0.1", userAgent: handshake?.identity.userAgent
                    )
                }
                let limits = Task {
                    // Idle timeout and maximum duration, as API Gateway closes connections.
                    while !Task.isCancelled {
                        try await Task.sleep(for: .seconds(1))
                        let now = WallClock.nowMilliseconds
                        guard let entry = connections.withLock({ $0[connectionID] }) else { return }
                        let idle = Duration.milliseconds(now - entry.lastActiveAt) > configuration.idleTimeout
                        let tooOld = Duration.milliseconds(now - entry.connectedAt) > configuration.maxDuration
                        if idle || tooOld {
                            try? await outbound.write(Self.closeFrame(1001, "Going away"))
                            channel.channel.close(promise: nil)
                            return
                        }
                    }
                }
                defer { limits.cancel() }
                // Fragments of the message being received (messages are at most 128 KB, as on API Gateway).
                var message: ByteBuffer?
                for try await frame in inbound {
                    connections.withLock { $0[connectionID]?.lastActiveAt = WallClock.nowMilliseconds }
                    switch frame.opcode {
                    case .text, .binary, .continuation:
                        var fragment = frame.unmaskedData
                        if frame.opcode == .continuation {
                            guard message != nil else { continue }
                            message!.writeBuffer(&fragment)
                        } else {
                            message = fragment
                        }
                        if message!.readableBytes > configuration.maxMessageSize {
                            closeCode = 1009
                            closeReason = "Message too big"
                            try? await outbound.write(Self.closeFrame(1009, "Message too big"))
                            return
                        }
                        guard frame.fin, let data = message else { continue }
                        message = nil
                        let text = String(buffer: data)
                        let route = routeKey(for: text)
                        guard let function = configuration.routes[route] ?? configuration.routes["$default"] else {
                            try await outbound.write(Self.textFrame(#"{"message": "Forbidden", "connectionId":"\#(connectionID)", "requestId":"\#(RequestID.make())"}"#))
                            continue
                        }
                        let resolved = configuration.routes[route] != nil ? route : "$default"
                        let event = self.event(
                            routeKey: resolved, type: .message, connectionID: connectionID, connectedAt: connectedAt, head: nil, sourceIp: handshake?.identity.sourceIp ?? "",
                            body: text
                        )
                        // Messages are handled one after another per connection, in order.
                        let report = await invoke(function, event, configuration.integrationTimeout, nil)
                        if case .success(let body, _)? = report?.outcome {
                            if configuration.twoWayRoutes.contains(resolved), let answer = Self.routeResponse(fromFunction: body) {
                                try await outbound.write(answer)
                            }
                        } else {
                            try await outbound.write(Self.textFrame(#"{"message": "Internal server error", "connectionId":"\#(connectionID)", "requestId":"\#(RequestID.make())"}"#))
                        }
                    case .ping:
                        try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
                    case .connectionClose:
                        var data = frame.unmaskedData
                        closeCode = Int(data.readInteger(as: UInt16.self) ?? 1005)
                        closeReason = data.readString(length: data.readableBytes) ?? ""
                        try? await outbound.write(Self.closeFrame(UInt16(closeCode == 1005 ? 1000 : closeCode), ""))
                        return
                    default:
                        continue
                    }
                }
            }
        } catch {
            if "\(error)".contains("Frame") || "\(error)".contains("TooLarge") || "\(error)".contains("tooLarge") {
                closeCode = 1009
                closeReason = "Message too big"
            }
            logger.debug("WebSocket connection ended", metadata: ["connection.id": "\(connectionID)", "error": "\(error)"])
        }
        connections.withLock { _ = $0.removeValue(forKey: connectionID) }
        // $disconnect, on every close.
        if let function = configuration.routes["$disconnect"] {
            var event = self.event(
                routeKey: "$disconnect", type: .disconnect, connectionID: connectionID, connectedAt: handshake?.connectedAt ?? 0, head: nil,
                sourceIp: handshake?.identity.sourceIp ?? ""
            )
            event = Self.addingDisconnect(event, code: closeCode, reason: closeReason)
            _ = await invoke(function, event, configuration.integrationTimeout, nil)
        }
    }

    /// Evaluates `$request.body.<path>` (also `${request.body.<path>}`) on a message: a non-JSON message, or a missing path, gives `$default`.
    func routeKey(for message: String) -> String {
        var expression = configuration.routeSelectionExpression
        if expression.hasPrefix("${"), expression.hasSuffix("}") { expression = "$" + expression.dropFirst(2).dropLast() }
        guard expression.hasPrefix("$request.body.") else { return expression == "\\$default" ? "$default" : expression }
        let path = expression.dropFirst("$request.body.".count).split(separator: ".")
        // The usual message, an object whose member at the path is a string, read directly; anything else as below.
        var text = message
        if let key = text.withUTF8({ Self.stringMember(at: path, in: UnsafeRawBufferPointer($0)) }) { return key }
        guard let object = try? JSONSerialization.jsonObject(with: Data(message.utf8)) as? [String: Any] else { return "$default" }
        var value: Any? = object
        for part in path { value = (value as? [String: Any])?[String(part)] }
        switch value {
        case let text as String: return text
        case let number as NSNumber: return number.stringValue
        default: return "$default"
        }
    }

    /// The string at `path` (member names) in a JSON object, the last one where a name repeats, as
    /// JSONSerialization reads it; nil when the text is not such an object or a value on the path is
    /// of another kind (the caller then reads it with JSONSerialization).
    static func stringMember(at path: [Substring], in bytes: UnsafeRawBufferPointer) -> String? {
        var reader = JSONReader(bytes)
        var found: String?
        func read(_ reader: inout JSONReader, _ remaining: ArraySlice<Substring>) throws(JSONReader.Failure) {
            try reader.object { (reader: inout JSONReader, name: String) throws(JSONReader.Failure) in
                guard let first = remaining.first, name == first else { return try reader.skipValue() }
                let expected = remaining.count == 1 ? UInt8(ascii: "\"") : UInt8(ascii: "{")
                guard reader.peek() == expected else { throw JSONReader.Failure(description: "another kind of value on the path") }
                if remaining.count == 1 { found = try reader.string() } else { try read(&reader, remaining.dropFirst()) }
            }
        }
        do {
            try read(&reader, path[...])
        } catch {
            return nil
        }
        return reader.isAtEnd() ? found : nil
    }

    // MARK: Events

    private func event(
        routeKey: String, type: WebSocketRequest.EventType, connectionID: String, connectedAt: Int64, head: HTTPRequestHead?, sourceIp: String, body: String? = nil
    ) -> ByteBuffer {
        let now = WallClock.nowMilliseconds
        var headers: [String: String]?
        var multiValueHeaders: [String: [String]]?
        var query: [String: String]?
        var multiQuery: [String: [String]]?
        if let head {
            var single: [String: String] = [:]
            var multi: [String: [String]] = [:]
            for (name, value) in head.headers {
                single[name] = value
                multi[name, default: []].append(value)
            }
            (headers, multiValueHeaders) = (single, multi)
            let pairs = SignatureVerifier.queryPairs(head.uri.split(separator: "?", maxSplits: 1).dropFirst().first)
            if !pairs.isEmpty {
                query = Dictionary(pairs, uniquingKeysWith: { _, last in last })
                multiQuery = Dictionary(grouping: pairs, by: { $0.0 }).mapValues { $0.map(\.1) }
            }
        }
        let request = WebSocketRequest(
            headers: headers, multiValueHeaders: multiValueHeaders, queryStringParameters: query, multiValueQueryStringParameters: multiQuery,
            requestContext: .init(
                routeKey: routeKey, eventType: type, extendedRequestId: RequestID.make(), requestTime: SampleEvents.requestTime(Date()),
                stage: configuration.stage, connectedAt: connectedAt, requestTimeEpoch: now,
                identity: .init(sourceIp: sourceIp, userAgent: head?.headers.first(name: "User-Agent")), requestId: RequestID.make(),
                domainName: "127.0.0.1", connectionId: connectionID, apiId: configuration.apiID, messageId: type == .message ? RequestID.make() : nil
            ),
            body: body
        )
        return ByteBuffer(bytes: request.jsonBytes)
    }

    static func addingDisconnect(_ event: ByteBuffer, code: Int, reason: String) -> ByteBuffer {
        guard var request = event.withUnsafeReadableBytes({ WebSocketRequest(jsonBytes: $0) }) else { return event }
        request.requestContext.disconnectStatusCode = code
        request.requestContext.disconnectReason = reason
        return ByteBuffer(bytes: request.jsonBytes)
    }

    static func statusCode(of body: ByteBuffer) -> Int {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView), options: [.fragmentsAllowed]) as? [String: Any] else { return 200 }
        return (object["statusCode"] as? Int) ?? 200
    }

    static func body(of body: ByteBuffer) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any])?["body"] as? String
    }

    /// What a two-way route sends back of its Lambda proxy integration's answer: the `body` of an
    /// object (decoded when `isBase64Encoded`, as a binary frame), or an answer that is not such an
    /// object as it is; nil when there is nothing to send.
    static func routeResponse(fromFunction payload: ByteBuffer) -> WebSocketFrame? {
        guard payload.readableBytes > 0 else { return nil }
        // The usual answer, a proxy integration object, read directly; anything else as below.
        if let answer = payload.withUnsafeReadableBytes({ ProxyAnswer(jsonBytes: $0) }) {
            guard let body = answer.body, !body.isEmpty else { return nil }
            if answer.isBase64Encoded == true {
                guard let bytes = MartletRuntime.Base64.decode(body) else { return nil }
                return WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: bytes))
            }
            return textFrame(body)
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.readableBytesView)) as? [String: Any] else {
            return WebSocketFrame(fin: true, opcode: .text, data: payload)
        }
        guard let body = object["body"] as? String, !body.isEmpty else { return nil }
        if object["isBase64Encoded"] as? Bool == true {
            guard let bytes = MartletRuntime.Base64.decode(body) else { return nil }
            return WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: bytes))
        }
        return textFrame(body)
    }

    /// `{"statusCode": …, "body": "…", "isBase64Encoded": …}` as a route's function answers, read
    /// directly; nil for any other answer (a body that is not a string, an answer that is not an object).
    struct ProxyAnswer {
        var body: String?
        var isBase64Encoded: Bool?

        init?(jsonBytes: UnsafeRawBufferPointer) {
            var reader = JSONReader(jsonBytes)
            var body: String?, isBase64Encoded: Bool?
            do {
                try reader.object { (reader: inout JSONReader, name: String) throws(JSONReader.Failure) in
                    switch name {
                    case "body": body = try reader.optionalString()
                    case "isBase64Encoded": isBase64Encoded = reader.takeNull() ? nil : try reader.bool()
                    default: try reader.skipValue()
                    }
                }
            } catch {
                return nil
            }
            guard reader.isAtEnd() else { return nil }
            self.body = body
            self.isBase64Encoded = isBase64Encoded
        }
    }

    static func textFrame(_ text: String) -> WebSocketFrame { WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)) }

    static func closeFrame(_ code: UInt16, _ reason: String) -> WebSocketFrame {
        var data = ByteBuffer()
        data.writeInteger(code)
        data.writeString(reason)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
    }

    static func makeConnectionID() -> String {
        // API Gateway's ids are 16 base64-ish characters ending in "=".
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<15).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }) + "="
    }

    // MARK: HTTP on the same port: refused handshakes and the @connections management API

    func answerHTTP(_ request: HTTPServerRequest) async -> HTTPServerResponse {
        let path = String(request.path)
        if let range = path.range(of: "/@connections/") {
            return await manage(request, connectionID: URIDecoding.decode(path[range.upperBound...]))
        }
        return .json(.notFound, #"{"message":"Not Found"}"#)
    }

    /// PostToConnection, GetConnection, DeleteConnection.
    func manage(_ request: HTTPServerRequest, connectionID: String) async -> HTTPServerResponse {
        if case .failure(let failure) = verifier.verify(request) {
            let type = failure.kind == .unknownAccessKey || failure.kind == .invalidToken ? "UnrecognizedClientException" : "ForbiddenException"
            return Self.error(.forbidden, type, failure.message)
        }
        guard let connection = connections.withLock({ $0[connectionID] }) else { return Self.error(.gone, "GoneException", nil) }
        switch request.method {
        case .POST:
            guard request.body.readableBytes <= ConnectionsClient.maxPostSize, !request.bodyTooLarge else {
                return Self.error(.payloadTooLarge, "PayloadTooLargeException", "Request entity too large")
            }
            do {
                // Messages over the frame limit are split into frames, as API Gateway sends them.
                var data = request.body
                let text = String(validating: data.readableBytesView, as: UTF8.self) != nil
                var first = true
                repeat {
                    let slice = data.readSlice(length: min(configuration.maxFrameSize, data.readableBytes)) ?? ByteBuffer()
                    let opcode: WebSocketOpcode = first ? (text ? .text : .binary) : .continuation
                    try await connection.outbound.write(WebSocketFrame(fin: data.readableBytes == 0, opcode: opcode, data: slice))
                    first = false
                } while data.readableBytes > 0
            } catch {
                return Self.error(.gone, "GoneException", nil)
            }
            return HTTPServerResponse(status: .ok, headers: ["x-amzn-RequestId": RequestID.make()])
        case .GET:
            func iso(_ milliseconds: Int64) -> String {
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
            }
            let body: [String: Any] = [
                "connectedAt": iso(connection.connectedAt), "lastActiveAt": iso(connection.lastActiveAt),
                "identity": ["sourceIp": connection.sourceIp, "userAgent": connection.userAgent ?? ""],
            ]
            let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
            return .json(.ok, String(decoding: data, as: UTF8.self), headers: ["x-amzn-RequestId": RequestID.make()])
        case .DELETE:
            try? await connection.outbound.write(Self.closeFrame(1000, ""))
            connection.channel.close(promise: nil)
            return HTTPServerResponse(status: .noContent, headers: ["x-amzn-RequestId": RequestID.make()])
        default:
            return Self.error(.methodNotAllowed, "BadRequestException", "Method not allowed")
        }
    }

    static func error(_ status: HTTPResponseStatus, _ type: String, _ message: String?) -> HTTPServerResponse {
        let body = message.map { #"{"message":\#(JSONString.quoted($0))}"# } ?? "{}"
        return .json(status, body, headers: ["x-amzn-ErrorType": type, "x-amzn-RequestId": RequestID.make()])
    }
}
