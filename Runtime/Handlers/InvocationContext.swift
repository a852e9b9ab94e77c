import Logging

/// What a handler knows about the invocation it serves.
public struct InvocationContext: Sendable {
    /// The AWS request id of this invocation.
    public let requestID: String
    /// The deadline, in Unix epoch milliseconds.
    public let deadlineEpochMilliseconds: Int64
    /// The ARN the caller invoked (may carry a version or alias).
    public let invokedFunctionARN: String
    /// The X-Ray trace header, also exported as `_X_AMZN_TRACE_ID` during the invocation.
    public let traceID: String?
    /// The client context JSON, when the caller sent one.
    public let clientContext: String?
    /// The Cognito identity JSON, when present.
    public let cognitoIdentity: String?
    /// The tenant id, for tenant-isolated functions.
    public let tenantID: String?
    /// A logger whose every line carries this request id.
    public let logger: Logger

    public init(metadata: InvocationMetadata, logger: Logger) {
        self.requestID = metadata.requestID
        self.deadlineEpochMilliseconds = metadata.deadlineEpochMilliseconds
        self.invokedFunctionARN = metadata.invokedFunctionARN
        self.traceID = metadata.traceID
        self.clientContext = metadata.clientContext
        self.cognitoIdentity = metadata.cognitoIdentity
        self.tenantID = metadata.tenantID
        var logger = logger
        logger[metadataKey: LogKey.requestID] = .string(metadata.requestID)
        self.logger = logger
    }

    /// A context for tests: a fresh request id and a deadline `timeout` from now.
    public static func forTesting(
        requestID: String = "00000000-0000-4000-8000-000000000000",
        timeout: Duration = .seconds(3),
        invokedFunctionARN: String = "arn:aws:lambda:us-east-1:123456789012:function:test",
        traceID: String? = nil,
        logger: Logger = Logger(label: "test")
    ) -> InvocationContext {
        let deadline = WallClock.nowMilliseconds + Int64(timeout.components.seconds * 1000)
            + Int64(timeout.components.attoseconds / 1_000_000_000_000_000)
        return InvocationContext(
            metadata: .init(requestID: requestID, deadlineEpochMilliseconds: deadline, invokedFunctionARN: invokedFunctionARN, traceID: traceID),
            logger: logger
        )
    }

    /// The time left before Lambda stops the invocation (negative once past the deadline).
    public var remainingTime: Duration {
        .milliseconds(deadlineEpochMilliseconds - WallClock.nowMilliseconds)
    }
}

/// Metadata keys used in logs across Martlet.
public enum LogKey {
    public static let requestID = "aws.request.id"
}
