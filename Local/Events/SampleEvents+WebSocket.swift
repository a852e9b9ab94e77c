import Foundation
import MartletRuntime

extension SampleEvents {
    /// The WebSocket API and connection a sample event belongs to.
    public struct WebSocketAPI: Sendable {
        /// The sample WebSocket API's domain.
        public static let defaultDomainName = "abc123defg.execute-api.us-east-1.amazonaws.com"

        public var connectionID: String
        public var stage: String
        /// An `execute-api` domain, whose first label is the API id, or a custom domain.
        public var domainName: String
        /// When API Gateway received the request.
        public var time: Date

        /// - Parameter connectionID: A fresh id in API Gateway's form (`L0SM9cOFvHcCIhw=`) when `nil`.
        public init(connectionID: String? = nil, stage: String = "prod", domainName: String = defaultDomainName, time: Date = Date()) {
            self.connectionID = connectionID ?? SampleEvents.gatewayID()
            self.stage = stage
            self.domainName = domainName
            self.time = time
        }
    }

    /// A `$connect`: the upgrade request's headers and query.
    public struct WebSocketConnectOptions: Sendable {
        public var api: WebSocketAPI
        /// Added to, or replacing (by name, in any case), the headers a browser and API Gateway send.
        public var headers: [NameValue]
        public var query: [NameValue]

        public init(api: WebSocketAPI = .init(), headers: [NameValue] = [], query: [NameValue] = []) {
            self.api = api
            self.headers = headers
            self.query = query
        }
    }

    /// A message on a route.
    public struct WebSocketMessageOptions: Sendable {
        public var api: WebSocketAPI
        public var routeKey: String
        /// The message; when `nil`, `{"action": routeKey}` (with a sample job for `submit`).
        public var body: String?
        /// Sends the body base64-encoded, as API Gateway does for binary frames.
        public var isBase64Encoded: Bool

        public init(api: WebSocketAPI = .init(), routeKey: String = "submit", body: String? = nil, isBase64Encoded: Bool = false) {
            self.api = api
            self.routeKey = routeKey
            self.body = body
            self.isBase64Encoded = isBase64Encoded
        }
    }

    /// A `$disconnect`, with the close frame's code and reason.
    public struct WebSocketDisconnectOptions: Sendable {
        public var api: WebSocketAPI
        public var statusCode: Int
        public var reason: String

        public init(api: WebSocketAPI = .init(), statusCode: Int = 1000, reason: String = "") {
            self.api = api
            self.statusCode = statusCode
            self.reason = reason
        }
    }

    /// A `$connect` event as API Gateway sends it: every upgrade header in both `headers` and `multiValueHeaders`.
    public static func webSocketConnect(_ options: WebSocketConnectOptions) -> WebSocketRequest {
        let api = options.api
        let browser = [
            NameValue("Host", api.domainName),
            NameValue("Origin", "https://app.example.com"),
            NameValue("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
            NameValue("Sec-WebSocket-Key", Data(randomBytes(16)).base64EncodedString()),
            NameValue("Sec-WebSocket-Version", "13"),
            NameValue("User-Agent", browserUserAgent),
            NameValue("X-Amzn-Trace-Id", traceHeader(api.time)),
            NameValue("X-Forwarded-For", callerIP),
            NameValue("X-Forwarded-Port", "443"),
            NameValue("X-Forwarded-Proto", "https"),
        ]
        let replaced = Set(options.headers.map { $0.name.lowercased() })
        let headers = browser.filter { !replaced.contains($0.name.lowercased()) } + options.headers
        let query = options.query.isEmpty ? nil : options.query
        return WebSocketRequest(
            headers: lastValues(headers), multiValueHeaders: allValues(headers),
            queryStringParameters: query.map(lastValues), multiValueQueryStringParameters: query.map(allValues),
            requestContext: context(api, routeKey: "$connect", eventType: .connect, connectedFor: 0, userAgent: nil, sourceIP: sourceIP(options.headers))
        )
    }

    /// A message event on `routeKey`, as the route selection expression chose it.
    public static func webSocketMessage(_ options: WebSocketMessageOptions) -> WebSocketRequest {
        let action = #""action":\#(JSONString.quoted(options.routeKey))"#
        let text = options.body ?? (options.routeKey == "submit" ? "{\(action),\(sampleJob)}" : "{\(action)}")
        var context = context(options.api, routeKey: options.routeKey, eventType: .message, connectedFor: 5_000)
        context.messageId = gatewayID()
        return WebSocketRequest(
            requestContext: context, body: options.isBase64Encoded ? base64(text) : text, isBase64Encoded: options.isBase64Encoded
        )
    }

    /// A `$disconnect` event: the few headers API Gateway keeps, and the close code and reason.
    public static func webSocketDisconnect(_ options: WebSocketDisconnectOptions) -> WebSocketRequest {
        // What real $disconnect events carry, empty values included.
        let headers = [
            NameValue("Host", options.api.domainName), NameValue("x-api-key", ""), NameValue("X-Forwarded-For", ""), NameValue("x-restapi", ""),
        ]
        var context = context(options.api, routeKey: "$disconnect", eventType: .disconnect, connectedFor: 600_000)
        context.disconnectStatusCode = options.statusCode
        context.disconnectReason = options.reason
        return WebSocketRequest(headers: lastValues(headers), multiValueHeaders: allValues(headers), requestContext: context)
    }

    private static func context(
        _ api: WebSocketAPI, routeKey: String, eventType: WebSocketRequest.EventType, connectedFor milliseconds: Int64,
        userAgent: String? = browserUserAgent, sourceIP: String = callerIP
    ) -> WebSocketRequest.Context {
        let requestID = gatewayID()
        let now = epochMilliseconds(api.time)
        return WebSocketRequest.Context(
            routeKey: routeKey, eventType: eventType, extendedRequestId: requestID, requestTime: requestTime(api.time),
            messageDirection: "IN", stage: api.stage, connectedAt: now - milliseconds, requestTimeEpoch: now,
            identity: .init(sourceIp: sourceIP, userAgent: userAgent), requestId: requestID, domainName: api.domainName,
            connectionId: api.connectionID, apiId: apiID(of: api.domainName)
        )
    }

    /// The caller's address: the given `X-Forwarded-For`'s first entry, else a documentation address.
    private static func sourceIP(_ headers: [NameValue]) -> String {
        let forwarded = headers.last { $0.name.lowercased() == "x-forwarded-for" }?.value
        let first = forwarded?.split(separator: ",").first?.trimmingCharacters(in: .whitespaces)
        return first.flatMap { $0.isEmpty ? nil : $0 } ?? callerIP
    }

    /// Each name's last value, as in `headers` and `queryStringParameters`.
    static func lastValues(_ pairs: [NameValue]) -> [String: String] {
        Dictionary(pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// Each name's values in order, as in `multiValueHeaders` and `multiValueQueryStringParameters`.
    static func allValues(_ pairs: [NameValue]) -> [String: [String]] {
        Dictionary(grouping: pairs, by: \.name).mapValues { $0.map(\.value) }
    }
}
