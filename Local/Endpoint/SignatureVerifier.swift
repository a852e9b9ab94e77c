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
    }

    public let kind: Kind
    public let message: String
}

/// What a verified request was signed for.
public struct VerifiedSignature: Sendable, Equatable {
    public var accessKeyID: String
    public var region: String
    public var service: String
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
        let signer = SigV4Signer(
            credentials: Credentials(accessKeyID: parsed.accessKeyID, secretAccessKey: secret), region: parsed.region, service: parsed.service
        )
        var headers: [(name: String, value: String)] = []
        for name in parsed.signedHeaders {
            let values = request.headers[name]
            if values.isEmpty, name != "host" { continue }
            for value in values { headers.append((name, value)) }
        }
        let url = Self.requestURL(request)
        let payloadHash: String
        if signer.usesS3Rules {
            payloadHash = request.headers.first(name: "X-Amz-Content-SHA256") ?? SHA256Hex.empty
        } else {
            payloadHash = request.headers.first(name: "X-Amz-Content-SHA256") ?? SHA256Hex.of(Array(request.body.readableBytesView))
        }
        let canonical = signer.canonicalRequest(method: request.method.rawValue, url: url, headers: headers, payloadHash: payloadHash)
        let expected = signer.signature(canonicalRequest: canonical, at: signedAt)
        guard Self.constantTimeEqual(expected, parsed.signature) else {
            return .failure(.init(
                kind: .signatureMismatch,
                message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
            ))
        }
        return .success(VerifiedSignature(accessKeyID: parsed.accessKeyID, region: parsed.region, service: parsed.service))
    }

    /// The request target as received: the path as sent, query parameters decoded and encoded again
    /// as SigV4 canonicalises them.
    static func requestURL(_ request: HTTPServerRequest) -> RequestURL {
        var url = RequestURL(scheme: "http", host: request.headers.first(name: "Host") ?? "localhost", encodedPath: String(request.path))
        if let query = request.query {
            for pair in query.split(separator: "&") where !pair.isEmpty {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = URIEncoding.decode(parts[0], plusAsSpace: false) ?? String(parts[0])
                let value = parts.count > 1 ? URIEncoding.decode(parts[1], plusAsSpace: false) ?? String(parts[1]) : ""
                url.appendQueryItem(name: name, value: value)
            }
        }
        return url
    }

    static func constantTimeEqual(_ left: String, _ right: String) -> Bool {
        let a = Array(left.utf8), b = Array(right.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
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
        guard header.hasPrefix(SigV4Signer.algorithm + " ") else { return nil }
        var fields: [String: String] = [:]
        for part in header.dropFirst(SigV4Signer.algorithm.count + 1).split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        guard let credential = fields["Credential"], let signed = fields["SignedHeaders"], let signature = fields["Signature"] else { return nil }
        let scope = credential.split(separator: "/", omittingEmptySubsequences: false)
        guard scope.count == 5, scope[4] == "aws4_request" else { return nil }
        accessKeyID = String(scope[0])
        date = String(scope[1])
        region = String(scope[2])
        service = String(scope[3])
        signedHeaders = signed.split(separator: ";").map { $0.lowercased() }
        self.signature = signature
    }
}
