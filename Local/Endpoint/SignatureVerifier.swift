import Foundation
import MartletAWS
import NIOHTTP1

/// The credentials the local endpoint accepts, and its region.
public struct LocalCredentials: Sendable {
    /// Secrets by access key id.
    public var secrets: [String: String]
    /// When set, every request must carry this session token.
    public var sessionToken: String?

    /// `test` / `test`, as local AWS tools commonly use.
    public static let `default` = LocalCredentials(secrets: ["test": "test"])

    public init(secrets: [String: String], sessionToken: String? = nil) {
        self.secrets = secrets
        self.sessionToken = sessionToken
    }
}

/// Why a request was refused before any operation ran.
public struct AuthenticationFailure: Error, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No `Authorization` header and no presigned query.
        case missing
        /// The access key is not one of ours.
        case unknownAccessKey
        /// The signature does not match.
        case signatureMismatch
        /// The request's date is more than 15 minutes from now (or a presigned URL has expired).
        case expired
        /// The session token is missing or wrong.
        case invalidToken
        /// The Authorization header cannot be read.
        case malformed
        /// A presigned URL's `X-Amz-*` parameters are missing or invalid.
        case queryParameters
        /// A presigned URL dated in the future.
        case notYetValid
    }

    public let kind: Kind
    public let message: String
    /// Extra facts for the error body (S3 lists them as elements: `X-Amz-Expires`, `ServerTime`, …).
    public var details: [(String, String)] = []
    public var accessKeyID: String?
    /// What we signed, for `SignatureDoesNotMatch` answers that show it as S3 does.
    public var stringToSign: String?
    public var canonicalRequest: String?
    public var signatureProvided: String?

    public init(
        kind: Kind, message: String, details: [(String, String)] = [], accessKeyID: String? = nil, stringToSign: String? = nil,
        canonicalRequest: String? = nil, signatureProvided: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.details = details
        self.accessKeyID = accessKeyID
        self.stringToSign = stringToSign
        self.canonicalRequest = canonicalRequest
        self.signatureProvided = signatureProvided
    }

    public static func == (left: Self, right: Self) -> Bool { left.kind == right.kind && left.message == right.message }
}

/// What a verified request was signed for, and what its signed chunks (S3 `aws-chunked` bodies) chain from.
public struct VerifiedSignature: Sendable, Equatable {
    public var accessKeyID: String
    public var region: String
    public var service: String
    /// `X-Amz-Date` as sent.
    public var amzDate: String
    /// The request's signature: the seed of a chunked upload's chain.
    public var signature: String
    /// The day's signing key (`kSigning`).
    public var signingKey: [UInt8]

    /// `date/region/service/aws4_request`.
    public var scope: String { "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request" }
}

/// Verifies SigV4 signatures as AWS does: recomputes the signature from the request as received,
/// with the secret of the access key it names.
public struct SignatureVerifier: Sendable {
    public let credentials: LocalCredentials
    /// How far a request's date may be from now: AWS allows 15 minutes.
    public static let allowedSkew: Int64 = 15 * 60

    public init(credentials: LocalCredentials) { self.credentials = credentials }

    /// Verifies a header-signed request (`Authorization: AWS4-HMAC-SHA256 …`).
    public func verify(_ request: HTTPServerRequest, now: AWSTimestamp = .now) -> Result<VerifiedSignature, AuthenticationFailure> {
        guard let authorization = request.headers.first(name: "Authorization") else {
            return .failure(.init(kind: .missing, message: "Request is missing Authentication Token"))
        }
        guard let parsed = ParsedAuthorization(authorization) else {
            return .failure(.init(kind: .malformed, message: "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization=\(authorization)"))
        }
        guard let secret = credentials.secrets[parsed.accessKeyID] else {
            return .failure(.init(kind: .unknownAccessKey, message: "The security token included in the request is invalid."))
        }
        guard let dateHeader = request.headers.first(name: "X-Amz-Date"), let signedAt = AWSTimestamp(amzDate: dateHeader) else {
            return .failure(.init(kind: .malformed, message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."))
        }
        if signedAt.secondsSince1970 < now.secondsSince1970 - Self.allowedSkew {
            return .failure(.init(kind: .expired, message: "Signature expired: \(signedAt.amzDate) is now earlier than \(now.adding(seconds: -Self.allowedSkew).amzDate) (\(now.amzDate) - 15 min.)"))
        }
        if signedAt.secondsSince1970 > now.secondsSince1970 + Self.allowedSkew {
            return .failure(.init(kind: .expired, message: "Signature not yet current: \(signedAt.amzDate) is still later than \(now.adding(seconds: Self.allowedSkew).amzDate) (\(now.amzDate) + 15 min.)"))
        }
        if let token = credentials.sessionToken, request.headers.first(name: "X-Amz-Security-Token") != token {
            return .failure(.init(kind: .invalidToken, message: "The security token included in the request is invalid."))
        }
        guard parsed.date == signedAt.scopeDate else {
            return .failure(.init(kind: .signatureMismatch, message: "Credential should be scoped to a valid region and date: \(parsed.date) does not match \(signedAt.amzDate)."))
        }
        let payloadHash: String
        if parsed.service == "s3" || parsed.service == "s3express" {
            payloadHash = request.headers.first(name: "X-Amz-Content-SHA256") ?? SHA256Hex.empty
        } else {
            payloadHash = request.headers.first(name: "X-Amz-Content-SHA256") ?? Hex.encode(request.body.withUnsafeReadableBytes { SHA256Hasher.hash($0) })
        }
        return check(
            request, accessKeyID: parsed.accessKeyID, secret: secret, region: parsed.region, service: parsed.service, signedHeaders: parsed.signedHeaders,
            signature: parsed.signature, signedAt: signedAt, url: Self.requestURL(request), payloadHash: payloadHash
        )
    }

    /// Verifies a presigned URL (`X-Amz-Algorithm`, `X-Amz-Credential`, … in the query): its signature,
    /// its expiry (`X-Amz-Expires`, at most 7 days) and its session token.
    public func verifyPresigned(_ request: HTTPServerRequest, now: AWSTimestamp = .now) -> Result<VerifiedSignature, AuthenticationFailure> {
        var parameters: [String: String] = [:]
        var url = RequestURL(scheme: "http", host: request.headers.first(name: "Host") ?? "localhost", encodedPath: String(request.path))
        for (name, value) in Self.queryPairs(request.query) {
            if name.hasPrefix("X-Amz-") { parameters[name] = value }
            if name != "X-Amz-Signature" { url.appendQueryItem(name: name, value: value) }
        }
        guard parameters["X-Amz-Algorithm"] == SigV4Signer.algorithm else {
            return .failure(.init(kind: .queryParameters, message: "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""))
        }
        guard let credential = parameters["X-Amz-Credential"], let signature = parameters["X-Amz-Signature"],
            let signedHeaderList = parameters["X-Amz-SignedHeaders"], let date = parameters["X-Amz-Date"], let expiresText = parameters["X-Amz-Expires"]
        else {
            return .failure(.init(
                kind: .queryParameters,
                message: "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
            ))
        }
        let scope = credential.split(separator: "/", omittingEmptySubsequences: false)
        guard scope.count == 5, scope[4] == "aws4_request" else {
            return .failure(.init(kind: .queryParameters, message: "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."))
        }
        guard let signedAt = AWSTimestamp(amzDate: date) else {
            return .failure(.init(kind: .queryParameters, message: "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""))
        }
        guard let expires = Int64(expiresText), expires >= 0 else {
            return .failure(.init(kind: .queryParameters, message: "X-Amz-Expires should be a number"))
        }
        guard expires <= 604_800 else {
            return .failure(.init(
                kind: .queryParameters,
                message: "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds"
            ))
        }
        let accessKeyID = String(scope[0])
        guard let secret = credentials.secrets[accessKeyID] else {
            return .failure(.init(kind: .unknownAccessKey, message: "The AWS Access Key Id you provided does not exist in our records.", accessKeyID: accessKeyID))
        }
        if now.secondsSince1970 > signedAt.secondsSince1970 + expires {
            return .failure(.init(
                kind: .expired, message: "Request has expired",
                details: [
                    ("X-Amz-Expires", expiresText), ("Expires", signedAt.adding(seconds: expires).iso8601),
                    ("ServerTime", now.iso8601),
                ]
            ))
        }
        if signedAt.secondsSince1970 > now.secondsSince1970 + Self.allowedSkew {
            return .failure(.init(kind: .notYetValid, message: "Request is not valid yet"))
        }
        if let token = credentials.sessionToken, parameters["X-Amz-Security-Token"] != token {
            return .failure(.init(kind: .invalidToken, message: "The provided token is malformed or otherwise invalid."))
        }
        guard scope[1] == signedAt.scopeDate else {
            return .failure(.init(kind: .queryParameters, message: "Invalid credential date \"\(scope[1])\". This date is not the same as X-Amz-Date: \"\(signedAt.scopeDate)\"."))
        }
        return check(
            request, accessKeyID: accessKeyID, secret: secret, region: String(scope[2]), service: String(scope[3]),
            signedHeaders: signedHeaderList.split(separator: ";").map { $0.lowercased() }, signature: signature, signedAt: signedAt, url: url,
            payloadHash: parameters["X-Amz-Content-Sha256"] ?? "UNSIGNED-PAYLOAD"
        )
    }

    /// Recomputes the signature of `request` with `secret` and compares it with the one sent.
    private func check(
        _ request: HTTPServerRequest, accessKeyID: String, secret: String, region: String, service: String, signedHeaders: [String], signature: String,
        signedAt: AWSTimestamp, url: RequestURL, payloadHash: String
    ) -> Result<VerifiedSignature, AuthenticationFailure> {
        let signer = SigV4Signer(credentials: Credentials(accessKeyID: accessKeyID, secretAccessKey: secret), region: region, service: service)
        let headers = Self.signedHeaderValues(request.headers, named: signedHeaders)
        let method = request.method.rawValue
        let expected = signer.expectedSignature(method: method, url: url, signedHeaders: headers, payloadHash: payloadHash, at: signedAt)
        guard Self.matches(hex: signature, expected) else {
            // What we signed, for the answer (S3 shows it): built again as text only on a mismatch.
            let canonical = signer.canonicalRequest(method: method, url: url, signedHeaders: headers, payloadHash: payloadHash)
            return .failure(.init(
                kind: .signatureMismatch,
                message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
                accessKeyID: accessKeyID, stringToSign: signer.stringToSign(canonicalRequest: canonical, at: signedAt), canonicalRequest: canonical,
                signatureProvided: signature
            ))
        }
        // The day's key, for the chunks that chain from the signature.
        let key = SigningKeyCache.shared.key(secret: secret, date: signedAt.scopeDate, region: region, service: service)
        return .success(VerifiedSignature(
            accessKeyID: accessKeyID, region: region, service: service, amzDate: signedAt.amzDate, signature: signature, signingKey: key
        ))
    }

    /// The values of the headers a client says it signed, in the order received (one pass over the
    /// request's headers; a signed header that is missing contributes nothing, so the signatures differ).
    static func signedHeaderValues(_ headers: HTTPHeaders, named names: [String]) -> [(name: String, value: String)] {
        var values: [(name: String, value: String)] = []
        values.reserveCapacity(names.count)
        for (name, value) in headers where names.contains(where: { ASCII.equalsIgnoringCase(name, $0) }) {
            values.append((name, value))
        }
        return values
    }

    /// Whether two signatures are equal, compared in constant time.
    static func constantTimeEqual(_ left: String, _ right: String) -> Bool {
        guard left.utf8.count == right.utf8.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(left.utf8, right.utf8) { difference |= a ^ b }
        return difference == 0
    }

    /// Whether `hex` (the signature sent) spells `bytes`, compared in constant time.
    static func matches(hex: String, _ bytes: [UInt8]) -> Bool {
        let digits = Array("0123456789abcdef".utf8)
        var difference = UInt8(hex.utf8.count == bytes.count * 2 ? 0 : 1)
        guard difference == 0 else { return false }
        var index = 0
        for character in hex.utf8 {
            let byte = bytes[index / 2]
            let digit = digits[Int(index.isMultiple(of: 2) ? byte >> 4 : byte & 0x0F)]
            difference |= character ^ digit
            index += 1
        }
        return difference == 0
    }

    /// The query's `name=value` pairs, percent-decoded.
    static func queryPairs(_ query: Substring?) -> [(String, String)] {
        guard let query else { return [] }
        return query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = URIEncoding.decode(parts[0], plusAsSpace: false) ?? String(parts[0])
            let value = parts.count > 1 ? URIEncoding.decode(parts[1], plusAsSpace: false) ?? String(parts[1]) : ""
            return (name, value)
        }
    }

    /// The request target as received: the path as sent, query parameters decoded and encoded again
    /// as SigV4 canonicalises them.
    static func requestURL(_ request: HTTPServerRequest) -> RequestURL {
        var url = RequestURL(scheme: "http", host: request.headers.first(name: "Host") ?? "localhost", encodedPath: String(request.path))
        for (name, value) in queryPairs(request.query) { url.appendQueryItem(name: name, value: value) }
        return url
    }

}

/// The parts of `AWS4-HMAC-SHA256 Credential=AK/20250115/us-east-1/sqs/aws4_request, SignedHeaders=a;b, Signature=hex`.
struct ParsedAuthorization {
    var accessKeyID: String
    var date: String
    var region: String
    var service: String
    var signedHeaders: [String]
    var signature: String

    init?(_ header: String) {
        // Read as UTF-8 bytes: splitting Characters (grapheme clusters) was most of a verification.
        var header = header
        guard let parsed = header.withUTF8({ Self.parse(UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }

    private init(accessKeyID: String, date: String, region: String, service: String, signedHeaders: [String], signature: String) {
        self.accessKeyID = accessKeyID
        self.date = date
        self.region = region
        self.service = service
        self.signedHeaders = signedHeaders
        self.signature = signature
    }

    private static let prefix = Array((SigV4Signer.algorithm + " ").utf8)

    private static func parse(_ bytes: UnsafeRawBufferPointer) -> ParsedAuthorization? {
        guard bytes.count > prefix.count, prefix.indices.allSatisfy({ bytes[$0] == prefix[$0] }) else { return nil }
        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self) }
        var credential: Range<Int>?
        var signed: Range<Int>?
        var signature: Range<Int>?
        var position = prefix.count
        while position < bytes.count {
            // One `name=value` field, up to the next comma, blanks around it dropped.
            var end = position
            while end < bytes.count, bytes[end] != UInt8(ascii: ",") { end += 1 }
            var lower = position, upper = end
            while lower < upper, isBlank(bytes[lower]) { lower += 1 }
            while upper > lower, isBlank(bytes[upper - 1]) { upper -= 1 }
            if let equals = (lower..<upper).first(where: { bytes[$0] == UInt8(ascii: "=") }) {
                let value = (equals + 1)..<upper
                switch text(lower..<equals) {
                case "Credential": credential = value
                case "SignedHeaders": signed = value
                case "Signature": signature = value
                default: break
                }
            }
            position = end + 1
        }
        guard let credential, let signed, let signature, !credential.isEmpty, !signed.isEmpty, !signature.isEmpty else { return nil }
        var scope: [String] = []
        var start = credential.lowerBound
        for index in credential where bytes[index] == UInt8(ascii: "/") {
            scope.append(text(start..<index))
            start = index + 1
        }
        scope.append(text(start..<credential.upperBound))
        guard scope.count == 5, scope[4] == "aws4_request" else { return nil }
        var names: [String] = []
        start = signed.lowerBound
        for index in signed.lowerBound...signed.upperBound where index == signed.upperBound || bytes[index] == UInt8(ascii: ";") {
            if index > start {
                names.append(String(unsafeUninitializedCapacity: index - start) { output in
                    for offset in 0..<(index - start) {
                        let byte = bytes[start + offset]
                        output[offset] = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
                    }
                    return index - start
                })
            }
            start = index + 1
        }
        return ParsedAuthorization(
            accessKeyID: scope[0], date: scope[1], region: scope[2], service: scope[3], signedHeaders: names, signature: text(signature)
        )
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
}
