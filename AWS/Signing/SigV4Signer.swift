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
    public func scope(at time: AWSTimestamp) -> String { "\(time.scopeDate)/\(region)/\(service)/aws4_request" }

    // MARK: Header signing

    /// Signs a request and returns every header to send: the given ones, then `Host` (when not
    /// given), `X-Amz-Date`, `X-Amz-Security-Token`, `X-Amz-Content-SHA256` (S3), `Authorization`.
    public func sign(
        method: String, url: RequestURL, headers: [(name: String, value: String)], payload: Payload, at time: AWSTimestamp
    ) -> [(name: String, value: String)] {
        var all = headers.filter { name, _ in
            let lower = Self.asciiLowercased(name)
            return lower != "authorization" && lower != "x-amz-date" && lower != "x-amz-security-token"
                && !(usesS3Rules && lower == "x-amz-content-sha256")
        }
        if !all.contains(where: { $0.name.utf8.count == 4 && Self.asciiLowercased($0.name) == "host" }) { all.append(("Host", url.hostHeader)) }
        all.append(("X-Amz-Date", time.amzDate))
        if let token = credentials.sessionToken { all.append(("X-Amz-Security-Token", token)) }
        let payloadHash = payload.hash
        if usesS3Rules { all.append(("X-Amz-Content-SHA256", payloadHash)) }
        let parts = canonicalParts(method: method, url: url, headers: all, extraQuery: [], payloadHash: payloadHash)
        let signature = self.signature(canonicalRequest: parts.request, at: time)
        all.append((
            "Authorization",
            "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope(at: time)), SignedHeaders=\(parts.signedHeaders), Signature=\(signature)"
        ))
        return all
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
        if !signedHeaders.contains(where: { $0.name.utf8.count == 4 && $0.name.lowercased() == "host" }) {
            signedHeaders.append(("host", url.hostHeader))
        }
        let (headerBlock, headerNames) = Self.canonicalHeaders(signedHeaders)
        let amzDate = time.amzDate
        let scope = "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
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
        let query = Self.canonicalQuery(url.queryItems + authQuery)
        let canonical = "\(Self.uppercased(method))\n\(canonicalURI(url.encodedPath))\n\(query)\n\(headerBlock)\n\(headerNames)\n\(payloadHash)"
        let stringToSign = "\(Self.algorithm)\n\(amzDate)\n\(scope)\n\(SHA256Hex.of(utf8: canonical))"
        var presigned = url
        presigned.queryItems += authQuery
        presigned.queryItems.append(.init(encodedName: "X-Amz-Signature", encodedValue: signature(stringToSign: stringToSign, at: time)))
        return presigned
    }

    // MARK: The pieces, public for verification and tests

    /// The canonical request of a header-signed request (all given headers but the unsigned ones).
    public func canonicalRequest(method: String, url: RequestURL, headers: [(name: String, value: String)], payloadHash: String) -> String {
        canonicalParts(method: method, url: url, headers: headers, extraQuery: [], payloadHash: payloadHash).request
    }

    /// The canonical request over exactly `headers`, as a verifier recomputes it from the headers a
    /// client says it signed (which may include ones we never sign ourselves, such as `Content-Length`).
    public func canonicalRequest(method: String, url: RequestURL, signedHeaders headers: [(name: String, value: String)], payloadHash: String) -> String {
        let query = Self.canonicalQuery(url.queryItems)
        let (canonicalHeaders, signedHeaders) = Self.canonicalHeaders(headers, excluding: [])
        return "\(Self.uppercased(method))\n\(canonicalURI(url.encodedPath))\n\(query)\n\(canonicalHeaders)\n\(signedHeaders)\n\(payloadHash)"
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
        let key = keys.key(secret: credentials.secretAccessKey, date: time.scopeDate, region: region, service: service)
        var text = stringToSign
        return text.withUTF8 { Hex.encode(HMACSHA256.authenticationCode(for: UnsafeRawBufferPointer($0), key: key)) }
    }

    /// The canonical URI of a path as sent: S3 uses it as it is; other services normalize it and encode it again.
    public func canonicalURI(_ encodedPath: String) -> String {
        if usesS3Rules { return encodedPath.isEmpty ? "/" : encodedPath }
        return URIEncoding.encode(Self.removingDotSegments(encodedPath), keepingSlashes: true)
    }

    private func canonicalParts(
        method: String, url: RequestURL, headers: [(name: String, value: String)], extraQuery: [RequestURL.QueryItem], payloadHash: String
    ) -> (request: String, signedHeaders: String) {
        let query = Self.canonicalQuery(url.queryItems + extraQuery)
        let (canonicalHeaders, signedHeaders) = Self.canonicalHeaders(headers)
        let request = "\(Self.uppercased(method))\n\(canonicalURI(url.encodedPath))\n\(query)\n\(canonicalHeaders)\n\(signedHeaders)\n\(payloadHash)"
        return (request, signedHeaders)
    }

    /// Methods are almost always written in capitals already.
    static func uppercased(_ method: String) -> String {
        method.utf8.allSatisfy { $0 < UInt8(ascii: "a") || $0 > UInt8(ascii: "z") } ? method : method.uppercased()
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
    /// headers joined with commas.
    static func canonicalHeaders(_ headers: [(name: String, value: String)], excluding excluded: Set<String> = unsignedHeaders) -> (block: String, names: String) {
        // Sorted by name, then by position, so repeated headers keep their order when joined.
        var entries: [(name: String, position: Int, value: String)] = []
        entries.reserveCapacity(headers.count)
        for (position, (name, value)) in headers.enumerated() {
            let lower = asciiLowercased(name)
            if !excluded.isEmpty, excluded.contains(lower) { continue }
            entries.append((lower, position, value))
        }
        entries.sort { $0.name != $1.name ? $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) : $0.position < $1.position }
        var block = ""
        var names = ""
        block.reserveCapacity(entries.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 2 })
        for (index, entry) in entries.enumerated() {
            if index > 0, entries[index - 1].name == entry.name {
                block.removeLast()  // the newline: the value joins the previous one
                block += ","
            } else {
                if !names.isEmpty { names += ";" }
                names += entry.name
                block += entry.name
                block += ":"
            }
            block += collapsingWhitespace(entry.value)
            block += "\n"
        }
        return (block, names)
    }

    /// Header names are ASCII: lowercasing them needs no Unicode tables, and most already are.
    public static func asciiLowercased(_ name: String) -> String {
        guard name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return name }
        return String(decoding: name.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }, as: UTF8.self)
    }

    static func signedHeaderNames(_ headers: [(name: String, value: String)]) -> String { canonicalHeaders(headers).names }

    static func collapsingWhitespace(_ value: String) -> String {
        // Most values have no whitespace to trim or collapse: keep them as they are.
        var previousWasSpace = true
        var clean = true
        for byte in value.utf8 {
            let isSpace = byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
            if isSpace && (previousWasSpace || byte != UInt8(ascii: " ")) { clean = false; break }
            previousWasSpace = isSpace
        }
        if clean && !previousWasSpace || value.isEmpty { return value }
        return value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
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

    private let entries = SynchronizedDictionary<Entry, [UInt8]>()
    /// The last key used: almost every signature of a process uses the same one.
    private let last = Mutex<(entry: Entry, key: [UInt8])?>(nil)
    private let capacity: Int

    public init(capacity: Int = 64) { self.capacity = capacity }

    /// The signing key for a secret, day, region and service: derived once, then served from the cache.
    public func key(secret: String, date: String, region: String, service: String) -> [UInt8] {
        let entry = Entry(secret: secret, date: date, region: region, service: service)
        if let bytes = last.withLock({ $0?.entry == entry ? $0?.key : nil }) { return bytes }
        let bytes: [UInt8]
        if let cached = entries[entry] {
            bytes = cached
        } else {
            bytes = Self.derive(secret: secret, date: date, region: region, service: service)
            entries.insert(bytes, for: entry, capacity: capacity)
        }
        last.withLock { $0 = (entry, bytes) }
        return bytes
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
