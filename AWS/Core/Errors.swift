/// An error answered by an AWS service: its HTTP status, error code, message and request id.
///
/// Codes come from the JSON `__type` (SQS, DynamoDB, the management API) or the XML `<Code>` (S3).
/// Match on ``code``: `error.code == "ConditionalCheckFailedException"`.
public struct AWSServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    public var service: String
    public var status: Int
    /// The error code, without any namespace prefix (`com.amazonaws.dynamodb.v20120810#`).
    public var code: String
    public var message: String
    public var requestID: String?
    /// The raw body, for codes that carry more than a message (S3's `<Key>`, DynamoDB's `Item`).
    public var body: [UInt8]

    public init(service: String, status: Int, code: String, message: String, requestID: String?, body: [UInt8] = []) {
        self.service = service
        self.status = status
        self.code = code
        self.message = message
        self.requestID = requestID
        self.body = body
    }

    public var description: String {
        "\(service) \(status) \(code): \(message)" + (requestID.map { " (request id \($0))" } ?? "")
    }

    /// Throttling codes that AWS asks clients to retry.
    static let throttlingCodes: Set<String> = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
        "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
        "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
        "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable",
    ]

    /// Whether a retry may succeed: throttling and server-side failures, never client errors.
    public var isRetryable: Bool {
        status >= 500 || status == 429 || Self.throttlingCodes.contains(code)
    }
}

/// An error of the client itself: bad arguments (refused before any request is sent), missing
/// configuration or credentials, transport failures and unreadable responses.
public struct AWSClientError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Kind: Sendable, Equatable {
        case invalidArgument, missingCredentials, missingRegion, transport, invalidResponse
    }

    private let kind: Kind
    public let message: String

    private init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// An argument AWS would refuse; nothing was sent.
    public static func invalidArgument(_ message: String) -> Self { Self(.invalidArgument, message) }
    /// No credentials could be found.
    public static func missingCredentials(_ message: String) -> Self { Self(.missingCredentials, message) }
    /// No region is configured.
    public static func missingRegion(_ message: String) -> Self { Self(.missingRegion, message) }
    /// The request could not be sent or its answer not received.
    public static func transport(_ message: String) -> Self { Self(.transport, message) }
    /// The service answered something this client cannot read.
    public static func invalidResponse(_ message: String) -> Self { Self(.invalidResponse, message) }

    public var isInvalidArgument: Bool { kind == .invalidArgument }
    public var isMissingCredentials: Bool { kind == .missingCredentials }
    public var isTransport: Bool { kind == .transport }

    public var description: String { message }
}
