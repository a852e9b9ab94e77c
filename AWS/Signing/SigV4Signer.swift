import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// AWS Signature Version 4: header signing and query-string presigning.
///
/// ```swift
/// let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "sqs")
/// let headers = signer.sign(method: "POST", url: url, headers: [("Content-Type", "application/x-amz-json-1.0")],
///                           payload: .bytes(body), at: .now)
/// ```
///
/// S3 differs from every other service in two ways, both handled from the service name: its
/// canonical URI is the path as sent (encoded once, never normalized), while other services encode
/// the path a second time after removing dot segments and empty segments; and S3 requests carry
/// the payload hash in `X-Amz-Content-SHA256`.
public struct SigV4Signer: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// Headers never signed: proxies and clients may change or drop them on the way.
    static let unsignedHeaders: Set<String> = [
        "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
        "user-agent", "x-amzn-trace-id",
        // Unlike botocore, never signed: the HTTP client sets it, and may frame a body differently.
        "content-length",
    ]

    public var credentials: Credentials
    public var region: String
    public var service: String
    private let keys: SigningKeyCache

    public init(credentials: Credentials, region: String, service: String, keyCache: SigningKeyCache = .shared) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.keys = keyCache
    }

    /// What the payload contributes to a signature.
    public enum Payload: Sendable {
        /// The body, hashed here.
        case bytes([UInt8])
        /// A body's SHA-256, already computed (lowercase hex).
        case sha256(String)
        /// `UNSIGNED-PAYLOAD` (S3 only): for streamed bodies and presigned URLs.
        case unsigned

        public static let empty = Payload.sha256(SHA256Hex.empty)

        var hash: String {
            switch self {
            case .bytes(let bytes): SHA256Hex.of(bytes)
            case .sha256(let hex): hex
            case .unsigned: "UNSIGNED-PAYLOAD"
            }
        }
    }

    /// Whether this service is S3's signing variant (single encoding, content hash header).
    public var usesS3Rules: Bool { service == "s3" || service == "s3-object-lambda" || service == "s3express" }

    /// The credential scope: `20150830/us-east-1/service/aws4_request`.
    public func scope(at time: AWSTimestamp) -> String { scope(scopeDate: time.scopeDate) }

    // MARK: Header signing

    /// Signs a request and returns every header to send: the given ones, then `Host` (when not
    /// given), `X-Amz-Date`, `X-Amz-Security-Token`, `X-Amz-Content-SHA256` (S3), `Authorization`.
    public func sign(
        method: String, url: RequestURL, headers: [(name: String, value: String)], payload: Payload, at time: AWSTimestamp
    ) -> [(name: String, value: String)] {
        var all: [(name: String, value: String)] = []
        all.reserveCapacity(headers.count + 5)
        var hasHost = false
        for header in headers {
            if ASCII.equalsIgnoringCase(header.name, "authorization") || ASCII.equalsIgnoringCase(header.name, "x-amz-date")
                || ASCII.equalsIgnoringCase(header.name, "x-amz-security-token") || (usesS3Rules && ASCII.equalsIgnoringCase(header.name, "x-amz-content-sha256"))
            {
                continue
            }
            hasHost = hasHost || ASCII.equalsIgnoringCase(header.name, "host")
            all.append(header)
        }
        if !hasHost { all.append(("Host", url.hostHeader)) }
        let amzDate = time.amzDate
        all.append(("X-Amz-Date", amzDate))
        if let token = credentials.sessionToken { all.append(("X-Amz-Security-Token", token)) }
        let payloadHash = payload.hash
        if usesS3Rules { all.append(("X-Amz-Content-SHA256", payloadHash)) }
        let canonical = CanonicalRequest(
            method: method, canonicalURI: canonicalURI(url.encodedPath), query: url.queryItems, headers: all, skippingUnsigned: true, payloadHash: payloadHash
        )
        let scopeDate = time.scopeDate
        let scope = scope(scopeDate: scopeDate)
        let signature = signatureBytes(of: canonical, amzDate: amzDate, scopeDate: scopeDate, scope: scope)
        var authorization = ""
        authorization.reserveCapacity(64 + credentials.accessKeyID.utf8.count + scope.utf8.count + canonical.signedHeaders.count + 64)
        authorization += Self.algorithm
        authorization += " Credential="
        authorization += credentials.accessKeyID
        authorization += "/"
        authorization += scope
        authorization += ", SignedHeaders="
        authorization += canonical.signedHeaderList
        authorization += ", Signature="
        authorization += Hex.encode(signature)
        all.append(("Authorization", authorization))
        return all
    }

    /// The signature (raw bytes) of a canonical request: its string to sign, MACed with the day's key.
    func signatureBytes(of canonical: CanonicalRequest, amzDate: String, scopeDate: String, scope: String) -> [UInt8] {
        var stringToSign: [UInt8] = []
        stringToSign.reserveCapacity(Self.algorithm.utf8.count + amzDate.utf8.count + scope.utf8.count + 67)
        stringToSign += Self.algorithm.utf8
        stringToSign.append(UInt8(ascii: "\n"))
        stringToSign += amzDate.utf8
        stringToSign.append(UInt8(ascii: "\n"))
        stringToSign += scope.utf8
        stringToSign.append(UInt8(ascii: "\n"))
        Hex.append(SHA256Hasher.hash(canonical.bytes), to: &stringToSign)
        let key = keys.hmacKey(secret: credentials.secretAccessKey, date: scopeDate, region: region, service: service)
        return stringToSign.withUnsafeBytes { key.authenticationCode(for: $0) }
    }

    private func scope(scopeDate: String) -> String {
        var scope = ""
        scope.reserveCapacity(scopeDate.utf8.count + region.utf8.count + service.utf8.count + 15)
        scope += scopeDate
        scope += "/"
        scope += region
        scope += "/"
        scope += service
        scope += "/aws4_request"
        return scope
    }

    // MARK: Presigning

    /// The longest expiry S3 accepts for a presigned URL: 7 days.
    public static let maxPresignExpiry = 604_800

    /// A presigned URL: the signature in the query (`X-Amz-*` parameters), `UNSIGNED-PAYLOAD`
    /// for S3. `headers` are headers the caller of the URL must send (such as `Content-Type`);
    /// they are signed along with `host`.
    public func presign(
        method: String, url: RequestURL, headers: [(name: String, value: String)] = [], expires: Int, at time: AWSTimestamp
    ) throws(AWSClientError) -> RequestURL {
        guard expires >= 1, expires <= Self.maxPresignExpiry else {
            throw .invalidArgument("a presigned URL expires after 1 to \(Self.maxPresignExpiry) seconds (7 days), not \(expires)")
        }
        var signedHeaders = headers
        if !signedHeaders.contains(where: { ASCII.equalsIgnoringCase($0.name, "host") }) {
            signedHeaders.append(("host", url.hostHeader))
        }
        let headerNames = Self.canonicalHeaders(signedHeaders).names
        let amzDate = time.amzDate
        let scopeDate = time.scopeDate
        let scope = scope(scopeDate: scopeDate)
        var authQuery: [RequestURL.QueryItem] = [
            .init(encodedName: "X-Amz-Algorithm", encodedValue: Self.algorithm),
            .init(encodedName: "X-Amz-Credential", encodedValue: URIEncoding.encode("\(credentials.accessKeyID)/\(scope)")),
            .init(encodedName: "X-Amz-Date", encodedValue: amzDate),
            .init(encodedName: "X-Amz-Expires", encodedValue: String(expires)),
            .init(encodedName: "X-Amz-SignedHeaders", encodedValue: URIEncoding.encode(headerNames)),
        ]
        if let token = credentials.sessionToken {
            authQuery.append(.init(encodedName: "X-Amz-Security-Token", encodedValue: URIEncoding.encode(token)))
        }
        let payloadHash = usesS3Rules ? "UNSIGNED-PAYLOAD" : SHA256Hex.empty
        var presigned = url
        presigned.queryItems += authQuery
        let canonical = CanonicalRequest(
            method: method, canonicalURI: canonicalURI(url.encodedPath), query: presigned.queryItems, headers: signedHeaders, skippingUnsigned: true,
            payloadHash: payloadHash
        )
        let signature = signatureBytes(of: canonical, amzDate: amzDate, scopeDate: scopeDate, scope: scope)
        presigned.queryItems.append(.init(encodedName: "X-Amz-Signature", encodedValue: Hex.encode(signature)))
        return presigned
    }

    // MARK: The pieces, public for verification and tests

    /// The canonical request of a header-signed request (all given headers but the unsigned ones).
    public func canonicalRequest(method: String, url: RequestURL, headers: [(name: String, value: String)], payloadHash: String) -> String {
        CanonicalRequest(
            method: method, canonicalURI: canonicalURI(url.encodedPath), query: url.queryItems, headers: headers, skippingUnsigned: true, payloadHash: payloadHash
        ).text
    }

    /// The canonical request over exactly `headers`, as a verifier recomputes it from the headers a
    /// client says it signed (which may include ones we never sign ourselves, such as `Content-Length`).
    public func canonicalRequest(method: String, url: RequestURL, signedHeaders headers: [(name: String, value: String)], payloadHash: String) -> String {
        verifiedCanonicalRequest(method: method, url: url, signedHeaders: headers, payloadHash: payloadHash).text
    }

    /// The signature (raw bytes) a request signed with exactly `headers` must carry: what a verifier
    /// compares with the one sent.
    public func expectedSignature(
        method: String, url: RequestURL, signedHeaders headers: [(name: String, value: String)], payloadHash: String, at time: AWSTimestamp
    ) -> [UInt8] {
        let canonical = verifiedCanonicalRequest(method: method, url: url, signedHeaders: headers, payloadHash: payloadHash)
        let scopeDate = time.scopeDate
        return signatureBytes(of: canonical, amzDate: time.amzDate, scopeDate: scopeDate, scope: scope(scopeDate: scopeDate))
    }

    private func verifiedCanonicalRequest(method: String, url: RequestURL, signedHeaders headers: [(name: String, value: String)], payloadHash: String) -> CanonicalRequest {
        CanonicalRequest(
            method: method, canonicalURI: canonicalURI(url.encodedPath), query: url.queryItems, headers: headers, skippingUnsigned: false, payloadHash: payloadHash
        )
    }

    /// The string to sign for a canonical request.
    public func stringToSign(canonicalRequest: String, at time: AWSTimestamp) -> String {
        "\(Self.algorithm)\n\(time.amzDate)\n\(scope(at: time))\n\(SHA256Hex.of(utf8: canonicalRequest))"
    }

    /// The hex signature of a canonical request.
    public func signature(canonicalRequest: String, at time: AWSTimestamp) -> String {
        signature(stringToSign: stringToSign(canonicalRequest: canonicalRequest, at: time), at: time)
    }

    /// The hex HMAC of any string with the day's signing key (also the signature of a POST policy).
    public func signature(stringToSign: String, at time: AWSTimestamp) -> String {
        let key = keys.hmacKey(secret: credentials.secretAccessKey, date: time.scopeDate, region: region, service: service)
        var text = stringToSign
        return text.withUTF8 { Hex.encode(key.authenticationCode(for: UnsafeRawBufferPointer($0))) }
    }

    /// The canonical URI of a path as sent: S3 uses it as it is; other services normalize it and encode it again.
    public func canonicalURI(_ encodedPath: String) -> String {
        if usesS3Rules { return encodedPath.isEmpty ? "/" : encodedPath }
        // The root, which JSON-protocol services always use, is its own canonical form.
        if encodedPath == "/" { return encodedPath }
        return URIEncoding.encode(Self.removingDotSegments(encodedPath), keepingSlashes: true)
    }

    /// Encoded parameters sorted by name, then value, joined with `&`.
    static func canonicalQuery(_ items: [RequestURL.QueryItem]) -> String {
        let sorted = items.sorted {
            $0.encodedName != $1.encodedName
                ? $0.encodedName.utf8.lexicographicallyPrecedes($1.encodedName.utf8) : $0.encodedValue.utf8.lexicographicallyPrecedes($1.encodedValue.utf8)
        }
        return RequestURL(scheme: "https", host: "", queryItems: sorted).encodedQuery
    }

    /// Lowercased names sorted, values trimmed with inner runs of whitespace collapsed, repeated
    /// headers joined with commas; the unsigned headers left out.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (block: String, names: String) {
        var block: [UInt8] = []
        var names: [UInt8] = []
        CanonicalRequest.appendHeaders(headers, skippingUnsigned: true, to: &block, names: &names)
        return (String(decoding: block, as: UTF8.self), String(decoding: names, as: UTF8.self))
    }

    /// RFC 3986 dot-segment removal, and empty segments dropped as AWS services expect.
    static func removingDotSegments(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        var output: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." { continue }
            if segment == ".." {
                if !output.isEmpty { output.removeLast() }
                continue
            }
            output.append(segment)
        }
        let leading = path.hasPrefix("/") ? "/" : ""
        let trailing = path.hasSuffix("/") && !output.isEmpty ? "/" : ""
        return leading + output.joined(separator: "/") + trailing
    }
}

/// Derived signing keys, cached per secret, day, region and service (HMAC chains are the slow part).
public final class SigningKeyCache: Sendable {
    /// The cache all signers share by default.
    public static let shared = SigningKeyCache()

    private struct Entry: Hashable, Sendable {
        var secret: String
        var date: String
        var region: String
        var service: String
    }

    private let entries = SynchronizedDictionary<Entry, HMACSHA256.Key>()
    /// The last key used: almost every signature of a process uses the same one.
    private let last = Mutex<(entry: Entry, key: HMACSHA256.Key)?>(nil)
    private let capacity: Int

    public init(capacity: Int = 64) { self.capacity = capacity }

    /// The signing key for a secret, day, region and service: derived once, then served from the cache.
    public func key(secret: String, date: String, region: String, service: String) -> [UInt8] {
        hmacKey(secret: secret, date: date, region: region, service: service).bytes
    }

    /// The signing key, ready to MAC with (its padded blocks already hashed).
    public func hmacKey(secret: String, date: String, region: String, service: String) -> HMACSHA256.Key {
        let entry = Entry(secret: secret, date: date, region: region, service: service)
        if let key = last.withLock({ $0?.entry == entry ? $0?.key : nil }) { return key }
        let key: HMACSHA256.Key
        if let cached = entries[entry] {
            key = cached
        } else {
            key = HMACSHA256.Key(Self.derive(secret: secret, date: date, region: region, service: service))
            entries.insert(key, for: entry, capacity: capacity)
        }
        last.withLock { $0 = (entry, key) }
        return key
    }

    /// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
    public static func derive(secret: String, date: String, region: String, service: String) -> [UInt8] {
        var key = Array(("AWS4" + secret).utf8)
        for part in [date, region, service, "aws4_request"] {
            key = HMACSHA256.authenticationCode(for: Array(part.utf8), key: key)
        }
        return key
    }
}

/// SHA-256 as lowercase hex.
public enum SHA256Hex {
    /// The hash of an empty payload.
    public static let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public static func of(_ bytes: some Collection<UInt8>) -> String { Hex.encode(SHA256Hasher.hash(bytes)) }

    /// The hash of a string's UTF-8 bytes, without copying them.
    public static func of(utf8 text: String) -> String {
        var text = text
        return text.withUTF8 { Hex.encode(SHA256Hasher.hash(UnsafeRawBufferPointer($0))) }
    }
}

/// Lowercase hex encoding.
public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Digests, MACs and byte buffers, read in place.
    public static func encode(_ bytes: some ContiguousBytes) -> String {
        bytes.withUnsafeBytes { raw in
            String(unsafeUninitializedCapacity: raw.count * 2) { output in
                for (index, byte) in raw.enumerated() {
                    output[2 * index] = digits[Int(byte >> 4)]
                    output[2 * index + 1] = digits[Int(byte & 0x0F)]
                }
                return raw.count * 2
            }
        }
    }
}
