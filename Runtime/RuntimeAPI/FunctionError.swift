import NIOCore

/// An error in Lambda's standard format: the body of `/error` and `/init/error`, and what callers receive.
///
/// ```json
/// {"errorMessage": "job payload missing 'model'", "errorType": "ValidationError"}
/// ```
public struct FunctionError: Error, Sendable, Equatable, Codable {
    /// A short type name, such as `ValidationError` or `Runtime.UnmarshalError`.
    public var errorType: String
    /// A human-readable message.
    public var errorMessage: String
    /// Optional frames; Swift errors carry none.
    public var stackTrace: [String]?

    public init(errorType: String, errorMessage: String, stackTrace: [String]? = nil) {
        self.errorType = errorType
        self.errorMessage = errorMessage
        self.stackTrace = stackTrace
    }

    /// Wraps any Swift error; an error that is already a ``FunctionError`` or ``FunctionErrorConvertible`` keeps its type.
    public init(_ error: any Error) {
        switch error {
        case let error as FunctionError:
            self = error
        case let error as any FunctionErrorConvertible:
            self = error.functionError
        default:
            self.init(errorType: String(describing: type(of: error)), errorMessage: String(describing: error))
        }
    }

    /// The value of `Lambda-Runtime-Function-Error-Type`: `Category.Reason`, as Lambda recommends.
    public var headerValue: String {
        errorType.contains(".") ? errorType : "Function.\(errorType)"
    }

    /// The error as compact JSON.
    public var json: String {
        var out = "{\"errorMessage\":"
        JSONString.append(errorMessage, to: &out)
        out += ",\"errorType\":"
        JSONString.append(errorType, to: &out)
        if let stackTrace {
            out += ",\"stackTrace\":["
            for (index, frame) in stackTrace.enumerated() {
                if index > 0 { out += "," }
                JSONString.append(frame, to: &out)
            }
            out += "]"
        }
        out += "}"
        return out
    }

    static func unmarshal(_ error: any Error) -> FunctionError {
        FunctionError(errorType: "Runtime.UnmarshalError", errorMessage: "Unable to unmarshal input: \(error)")
    }

    static func marshal(_ error: any Error) -> FunctionError {
        FunctionError(errorType: "Runtime.MarshalError", errorMessage: "Unable to marshal response: \(error)")
    }
}

/// An error that knows how it should be reported to Lambda.
public protocol FunctionErrorConvertible: Error {
    /// The type and message reported for this error.
    var functionError: FunctionError { get }
}
