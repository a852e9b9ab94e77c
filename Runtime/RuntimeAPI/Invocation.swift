import NIOCore
import NIOHTTP1

/// One invocation as delivered by `GET /runtime/invocation/next`: its metadata and the raw event.
public struct Invocation: Sendable {
    /// The metadata Lambda sends in the next-invocation headers.
    public var metadata: InvocationMetadata
    /// The event payload, exactly as the caller sent it.
    public var event: ByteBuffer

    public init(metadata: InvocationMetadata, event: ByteBuffer) {
        self.metadata = metadata
        self.event = event
    }
}

/// The next-invocation headers of the Lambda Runtime API, parsed.
public struct InvocationMetadata: Sendable, Equatable {
    /// `Lambda-Runtime-Aws-Request-Id`.
    public var requestID: String
    /// `Lambda-Runtime-Deadline-Ms`: the deadline as Unix epoch milliseconds.
    public var deadlineEpochMilliseconds: Int64
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    public var invokedFunctionARN: String
    /// `Lambda-Runtime-Trace-Id`, the X-Ray trace header.
    public var traceID: String?
    /// `Lambda-Runtime-Client-Context`: JSON, only when the caller sent one.
    public var clientContext: String?
    /// `Lambda-Runtime-Cognito-Identity`: JSON, only when present.
    public var cognitoIdentity: String?
    /// `Lambda-Runtime-Aws-Tenant-Id`, for tenant-isolated functions.
    public var tenantID: String?

    public init(
        requestID: String,
        deadlineEpochMilliseconds: Int64,
        invokedFunctionARN: String,
        traceID: String? = nil,
        clientContext: String? = nil,
        cognitoIdentity: String? = nil,
        tenantID: String? = nil
    ) {
        self.requestID = requestID
        self.deadlineEpochMilliseconds = deadlineEpochMilliseconds
        self.invokedFunctionARN = invokedFunctionARN
        self.traceID = traceID
        self.clientContext = clientContext
        self.cognitoIdentity = cognitoIdentity
        self.tenantID = tenantID
    }

    /// Parses the next-invocation headers; the request id and deadline are required.
    public init(headers: HTTPHeaders) throws(RuntimeAPIError) {
        guard let requestID = headers.first(name: RuntimeAPIHeader.requestID), !requestID.isEmpty else {
            throw .missingHeader(RuntimeAPIHeader.requestID)
        }
        guard let deadline = headers.first(name: RuntimeAPIHeader.deadline).flatMap({ Int64($0) }) else {
            throw .missingHeader(RuntimeAPIHeader.deadline)
        }
        func optional(_ name: String) -> String? {
            guard let value = headers.first(name: name), !value.isEmpty else { return nil }
            return value
        }
        self.init(
            requestID: requestID,
            deadlineEpochMilliseconds: deadline,
            invokedFunctionARN: optional(RuntimeAPIHeader.invokedFunctionARN) ?? "",
            traceID: optional(RuntimeAPIHeader.traceID),
            clientContext: optional(RuntimeAPIHeader.clientContext),
            cognitoIdentity: optional(RuntimeAPIHeader.cognitoIdentity),
            tenantID: optional(RuntimeAPIHeader.tenantID)
        )
    }

    /// The headers that carry this metadata on `GET /runtime/invocation/next`; empty values are omitted.
    public var headers: HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: RuntimeAPIHeader.requestID, value: requestID)
        headers.add(name: RuntimeAPIHeader.deadline, value: String(deadlineEpochMilliseconds))
        let optional: [(String, String?)] = [
            (RuntimeAPIHeader.invokedFunctionARN, invokedFunctionARN),
            (RuntimeAPIHeader.traceID, traceID),
            (RuntimeAPIHeader.clientContext, clientContext),
            (RuntimeAPIHeader.cognitoIdentity, cognitoIdentity),
            (RuntimeAPIHeader.tenantID, tenantID),
        ]
        for case (let name, let value?) in optional where !value.isEmpty {
            headers.add(name: name, value: value)
        }
        return headers
    }
}

/// Header names of the Lambda Runtime API (2018-06-01).
public enum RuntimeAPIHeader {
    public static let requestID = "Lambda-Runtime-Aws-Request-Id"
    public static let deadline = "Lambda-Runtime-Deadline-Ms"
    public static let invokedFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
    public static let traceID = "Lambda-Runtime-Trace-Id"
    public static let clientContext = "Lambda-Runtime-Client-Context"
    public static let cognitoIdentity = "Lambda-Runtime-Cognito-Identity"
    public static let tenantID = "Lambda-Runtime-Aws-Tenant-Id"
    public static let functionErrorType = "Lambda-Runtime-Function-Error-Type"
    public static let functionErrorBody = "Lambda-Runtime-Function-Error-Body"
    public static let responseMode = "Lambda-Runtime-Function-Response-Mode"
}

/// Paths of the Lambda Runtime API, relative to `http://$AWS_LAMBDA_RUNTIME_API`.
public enum RuntimeAPIPath {
    public static let version = "/2018-06-01"
    public static let next = "/2018-06-01/runtime/invocation/next"
    public static let initError = "/2018-06-01/runtime/init/error"
    public static func response(_ requestID: String) -> String {
        "/2018-06-01/runtime/invocation/\(requestID)/response"
    }
    public static func error(_ requestID: String) -> String {
        "/2018-06-01/runtime/invocation/\(requestID)/error"
    }
}
