/// A failure of the Runtime API itself (not of a handler): the runtime cannot go on and exits.
public struct RuntimeAPIError: Error, Sendable, CustomStringConvertible, Equatable {
    private enum Code: Equatable, Sendable {
        case missingHeader(String)
        case unexpectedStatus(path: String, status: UInt, body: String)
        case connectionClosed
        case invalidAddress(String)
        case connectFailed(String, String)
    }

    private let code: Code

    /// A required next-invocation header was missing or malformed.
    public static func missingHeader(_ name: String) -> Self { .init(code: .missingHeader(name)) }
    /// The Runtime API answered with a status the protocol does not allow here.
    public static func unexpectedStatus(path: String, status: UInt, body: String) -> Self {
        .init(code: .unexpectedStatus(path: path, status: status, body: body))
    }
    /// The Runtime API closed the connection.
    public static let connectionClosed = Self(code: .connectionClosed)
    /// `AWS_LAMBDA_RUNTIME_API` is not `host:port`.
    public static func invalidAddress(_ value: String) -> Self { .init(code: .invalidAddress(value)) }
    /// The Runtime API could not be reached.
    public static func connectFailed(_ address: String, underlying: any Error) -> Self {
        .init(code: .connectFailed(address, String(describing: underlying)))
    }

    /// The HTTP status, for `unexpectedStatus` errors.
    public var status: UInt? {
        if case .unexpectedStatus(_, let status, _) = code { return status }
        return nil
    }

    public var description: String {
        switch code {
        case .missingHeader(let name):
            "Runtime API sent an invocation without a valid \(name) header"
        case .unexpectedStatus(let path, let status, let body):
            "Runtime API answered \(status) to \(path): \(body)"
        case .connectionClosed:
            "Runtime API closed the connection"
        case .invalidAddress(let value):
            "AWS_LAMBDA_RUNTIME_API must be host:port, got '\(value)'"
        case .connectFailed(let address, let underlying):
            "cannot connect to the Runtime API at \(address): \(underlying)"
        }
    }
}
