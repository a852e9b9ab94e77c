import Foundation
import MartletAWS
import MartletRuntime

/// Ready-to-edit sample events for every event type Martlet handles, shaped as API Gateway and SQS
/// send them: fresh ids, the current time in each field's format, and the headers and attributes
/// the real services add.
///
/// ```swift
/// let event = try SampleEvents.http(.init(routeKey: "GET /jobs/{id}", pathParameters: [NameValue("id", "123")]))
/// print(try SampleEvents.json(event))
/// ```
public enum SampleEvents {
    /// The account in sample ARNs.
    public static let accountID = "123456789012"
    /// What a browser sends as its `User-Agent`.
    static let browserUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    /// The caller's address in WebSocket samples (a documentation address).
    static let callerIP = "203.0.113.9"
    /// The sample job every default body describes.
    static let sampleJob = #""model":"demo","parameters":{"prompt":"a cat on a skateboard"}"#

    /// Pretty-printed JSON with sorted keys, so samples diff well.
    public static func json(_ event: some Encodable) throws -> String {
        try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(event)).prettyPrinted()
    }

    /// An id as API Gateway makes them for connections and requests: 15 letters and digits, then `=`.
    public static func gatewayID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<15).map { _ in alphabet.randomElement()! }) + "="
    }

    /// API Gateway's request time, in the common log format: `27/Nov/2026:06:30:00 +0000`.
    public static func requestTime(_ date: Date) -> String {
        AWSTimestamp(secondsSince1970: Int64(date.timeIntervalSince1970.rounded(.down))).commonLogDate
    }

    static func epochMilliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }

    /// An X-Ray trace header as the load balancer in front of API Gateway adds it.
    static func traceHeader(_ date: Date) -> String {
        let seconds = String(Int(date.timeIntervalSince1970), radix: 16)
        return "Root=1-\(seconds)-\(hex(randomBytes(12)))"
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 8)
        while bytes.count < count { withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) } }
        return Array(bytes.prefix(count))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// The API id of an `execute-api` domain (its first label); custom domains keep a sample id.
    static func apiID(of domainName: String) -> String {
        let labels = domainName.split(separator: ".")
        return labels.count > 1 && labels[1] == "execute-api" ? String(labels[0]) : "abc123defg"
    }
}

/// One `NAME=VALUE` of a sample event: a header, query or path parameter, cookie or message attribute.
public struct NameValue: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// Reads `NAME=VALUE`; the value may be empty or contain `=`, the name may not be empty.
    public init(parsing text: String) throws(SampleEventError) {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw .invalidOption("expected NAME=VALUE")
        }
        self.init(String(text[..<equals]), String(text[text.index(after: equals)...]))
    }
}

/// Options that cannot make a sample event (a path that does not fit its route key, for example).
public struct SampleEventError: Error, CustomStringConvertible {
    private enum Code { case invalidOption }
    private let code: Code
    public let description: String

    /// The options contradict each other, or one is malformed.
    public static func invalidOption(_ message: String) -> SampleEventError { SampleEventError(code: .invalidOption, description: message) }
}
