/// An access key pair, with the session token of temporary credentials.
public struct Credentials: Sendable, Hashable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// When temporary credentials stop working; `nil` for long-term keys.
    public var expiration: AWSTimestamp?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: AWSTimestamp? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    /// Whether these credentials expire within `margin` seconds of `time`.
    public func expires(within margin: Int64, of time: AWSTimestamp = .now) -> Bool {
        guard let expiration else { return false }
        return expiration.secondsSince1970 - margin <= time.secondsSince1970
    }
}
