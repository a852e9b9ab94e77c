/// An API Gateway WebSocket event for a Lambda proxy integration: `$connect`, a message, or `$disconnect`.
public struct WebSocketRequest: Codable, Sendable, Equatable {
    /// What API Gateway knows about the request and the connection.
    public struct Context: Codable, Sendable, Equatable {
        /// The caller as API Gateway saw it.
        public struct Identity: Codable, Sendable, Equatable {
            public var sourceIp: String
            public var userAgent: String?
            public init(sourceIp: String, userAgent: String? = nil) {
                self.sourceIp = sourceIp
                self.userAgent = userAgent
            }
        }

        /// `$connect`, `$disconnect`, `$default`, or a custom route key.
        public var routeKey: String
        /// `CONNECT`, `MESSAGE` or `DISCONNECT`.
        public var eventType: EventType
        public var extendedRequestId: String?
        public var requestTime: String
        public var messageDirection: String?
        public var stage: String
        public var connectedAt: Int64
        public var requestTimeEpoch: Int64
        public var identity: Identity
        public var requestId: String
        public var domainName: String
        public var connectionId: String
        public var apiId: String
        /// Only on messages.
        public var messageId: String?
        /// Only on `$disconnect`: the WebSocket close code.
        public var disconnectStatusCode: Int?
        /// Only on `$disconnect`.
        public var disconnectReason: String?
        /// Present when a Lambda authorizer is attached.
        public var authorizer: JSONValue?

        public init(
            routeKey: String, eventType: EventType, extendedRequestId: String? = nil, requestTime: String,
            messageDirection: String? = "IN", stage: String, connectedAt: Int64, requestTimeEpoch: Int64,
            identity: Identity, requestId: String, domainName: String, connectionId: String, apiId: String,
            messageId: String? = nil, disconnectStatusCode: Int? = nil, disconnectReason: String? = nil,
            authorizer: JSONValue? = nil
        ) {
            self.routeKey = routeKey
            self.eventType = eventType
            self.extendedRequestId = extendedRequestId
            self.requestTime = requestTime
            self.messageDirection = messageDirection
            self.stage = stage
            self.connectedAt = connectedAt
            self.requestTimeEpoch = requestTimeEpoch
            self.identity = identity
            self.requestId = requestId
            self.domainName = domainName
            self.connectionId = connectionId
            self.apiId = apiId
            self.messageId = messageId
            self.disconnectStatusCode = disconnectStatusCode
            self.disconnectReason = disconnectReason
            self.authorizer = authorizer
        }
    }

    /// The three kinds of WebSocket event.
    public enum EventType: String, Codable, Sendable {
        case connect = "CONNECT"
        case message = "MESSAGE"
        case disconnect = "DISCONNECT"
    }

    /// Upgrade request headers (on `$connect`; a few on `$disconnect`).
    public var headers: [String: String]?
    public var multiValueHeaders: [String: [String]]?
    /// Query string of the upgrade request (only on `$connect`, only when present).
    public var queryStringParameters: [String: String]?
    public var multiValueQueryStringParameters: [String: [String]]?
    public var requestContext: Context
    /// The message text (only on messages).
    public var body: String?
    public var isBase64Encoded: Bool

    public init(
        headers: [String: String]? = nil, multiValueHeaders: [String: [String]]? = nil,
        queryStringParameters: [String: String]? = nil, multiValueQueryStringParameters: [String: [String]]? = nil,
        requestContext: Context, body: String? = nil, isBase64Encoded: Bool = false
    ) {
        self.headers = headers
        self.multiValueHeaders = multiValueHeaders
        self.queryStringParameters = queryStringParameters
        self.multiValueQueryStringParameters = multiValueQueryStringParameters
        self.requestContext = requestContext
        self.body = body
        self.isBase64Encoded = isBase64Encoded
    }

    /// Looks up a header case-insensitively, as HTTP header names are.
    public func header(_ name: String) -> String? {
        headers?.first { $0.key.caseInsensitiveEquals(name) }?.value
    }
}

/// What a WebSocket route's Lambda returns: the status decides a `$connect`; the body is sent
/// back only when the route has a route response.
public struct WebSocketResponse: Codable, Sendable, Equatable {
    public var statusCode: Int
    public var headers: [String: String]?
    public var multiValueHeaders: [String: [String]]?
    public var body: String?
    public var isBase64Encoded: Bool?

    public init(statusCode: Int = 200, headers: [String: String]? = nil, body: String? = nil, isBase64Encoded: Bool? = nil) {
        self.statusCode = statusCode
        self.headers = headers
        self.body = body
        self.isBase64Encoded = isBase64Encoded
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        self.utf8.count == other.utf8.count && self.lowercased() == other.lowercased()
    }
}
