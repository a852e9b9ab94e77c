/// An API Gateway HTTP API request in payload format 2.0 (also what Lambda function URLs send).
public struct HTTPRequest: Codable, Sendable, Equatable {
    /// What API Gateway knows about the request.
    public struct Context: Codable, Sendable, Equatable {
        /// The request line and caller.
        public struct HTTP: Codable, Sendable, Equatable {
            public var method: String
            public var path: String
            public var `protocol`: String
            public var sourceIp: String
            public var userAgent: String

            public init(method: String, path: String, protocol: String = "HTTP/1.1", sourceIp: String, userAgent: String) {
                self.method = method
                self.path = path
                self.protocol = `protocol`
                self.sourceIp = sourceIp
                self.userAgent = userAgent
            }
        }

        public var accountId: String
        public var apiId: String
        /// mTLS details; `null` for function URLs.
        public var authentication: JSONValue?
        /// JWT claims and scopes, a Lambda authorizer's context, or IAM details.
        public var authorizer: JSONValue?
        public var domainName: String
        public var domainPrefix: String
        public var http: HTTP
        public var requestId: String
        public var routeKey: String
        public var stage: String
        public var time: String
        public var timeEpoch: Int64

        public init(
            accountId: String, apiId: String, authentication: JSONValue? = nil, authorizer: JSONValue? = nil,
            domainName: String, domainPrefix: String, http: HTTP, requestId: String, routeKey: String,
            stage: String, time: String, timeEpoch: Int64
        ) {
            self.accountId = accountId
            self.apiId = apiId
            self.authentication = authentication
            self.authorizer = authorizer
            self.domainName = domainName
            self.domainPrefix = domainPrefix
            self.http = http
            self.requestId = requestId
            self.routeKey = routeKey
            self.stage = stage
            self.time = time
            self.timeEpoch = timeEpoch
        }
    }

    public var version: String
    /// `"POST /jobs"`, `"GET /jobs/{id}"`, or `"$default"`.
    public var routeKey: String
    public var rawPath: String
    /// The query string without its `?`.
    public var rawQueryString: String
    public var cookies: [String]?
    /// Lower-cased names; repeated headers joined with commas.
    public var headers: [String: String]?
    public var queryStringParameters: [String: String]?
    public var pathParameters: [String: String]?
    public var stageVariables: [String: String]?
    public var requestContext: Context
    public var body: String?
    public var isBase64Encoded: Bool

    public init(
        version: String = "2.0", routeKey: String, rawPath: String, rawQueryString: String = "", cookies: [String]? = nil,
        headers: [String: String]? = nil, queryStringParameters: [String: String]? = nil,
        pathParameters: [String: String]? = nil, stageVariables: [String: String]? = nil, requestContext: Context,
        body: String? = nil, isBase64Encoded: Bool = false
    ) {
        self.version = version
        self.routeKey = routeKey
        self.rawPath = rawPath
        self.rawQueryString = rawQueryString
        self.cookies = cookies
        self.headers = headers
        self.queryStringParameters = queryStringParameters
        self.pathParameters = pathParameters
        self.stageVariables = stageVariables
        self.requestContext = requestContext
        self.body = body
        self.isBase64Encoded = isBase64Encoded
    }

    /// Looks up a header case-insensitively.
    public func header(_ name: String) -> String? {
        headers?.first { $0.key.caseInsensitiveEquals(name) }?.value
    }

    /// The body as bytes, decoding base64 when `isBase64Encoded`; `nil` if there is none or it is not valid base64.
    public var bodyBytes: [UInt8]? {
        guard let body else { return nil }
        return isBase64Encoded ? Base64.decode(body) : Array(body.utf8)
    }
}

/// An HTTP API response in payload format 2.0.
public struct HTTPResponse: Codable, Sendable, Equatable {
    public var statusCode: Int
    public var headers: [String: String]?
    /// Each becomes its own `Set-Cookie` header.
    public var cookies: [String]?
    public var body: String?
    public var isBase64Encoded: Bool?

    public init(
        statusCode: Int, headers: [String: String]? = nil, cookies: [String]? = nil, body: String? = nil,
        isBase64Encoded: Bool? = nil
    ) {
        self.statusCode = statusCode
        self.headers = headers
        self.cookies = cookies
        self.body = body
        self.isBase64Encoded = isBase64Encoded
    }

    /// A response with binary content, sent base64-encoded as API Gateway expects.
    public init(statusCode: Int, headers: [String: String]? = nil, binaryBody: [UInt8]) {
        self.init(statusCode: statusCode, headers: headers, body: Base64.encode(binaryBody), isBase64Encoded: true)
    }

    /// A JSON message body, `{"message": "…"}`, as API Gateway's own errors look.
    public static func message(_ statusCode: Int, _ message: String) -> HTTPResponse {
        HTTPResponse(
            statusCode: statusCode, headers: ["content-type": "application/json"],
            body: "{\"message\":\(JSONString.quoted(message))}"
        )
    }
}
