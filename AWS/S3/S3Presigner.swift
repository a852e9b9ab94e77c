/// How S3 URLs name the bucket.
public enum S3AddressingStyle: String, Sendable {
    /// `https://bucket.s3.amazonaws.com/key` on AWS; path style for custom endpoints and bucket names with dots.
    case auto
    /// `https://s3.amazonaws.com/bucket/key`.
    case path
    /// `https://bucket.s3.amazonaws.com/key`.
    case virtual
}

/// Presigned S3 URLs and POST forms, computed locally from credentials (no request is sent).
///
/// ```swift
/// let presigner = S3Presigner(credentials: credentials, region: "us-east-1", endpoint: nil)
/// let url = try presigner.presignedURL(.get, bucket: "jobs", key: "results/1.json", expiresIn: 900)
/// ```
public struct S3Presigner: Sendable {
    public enum Method: String, Sendable {
        case get = "GET"
        case put = "PUT"
        case head = "HEAD"
        case delete = "DELETE"
    }

    public var credentials: Credentials
    public var region: String
    /// A custom endpoint (`AWS_ENDPOINT_URL_S3`), or `nil` for AWS's.
    public var endpoint: RequestURL?
    public var addressing: S3AddressingStyle

    public init(credentials: Credentials, region: String, endpoint: RequestURL? = nil, addressing: S3AddressingStyle = .auto) {
        self.credentials = credentials
        self.region = region
        self.endpoint = endpoint
        self.addressing = addressing
    }

    /// A presigned URL for one object. `contentType`, when given, is signed: the uploader must send
    /// exactly that `Content-Type`. Expiry is 1 second to 7 days.
    public func presignedURL(
        _ method: Method, bucket: String, key: String, expiresIn seconds: Int = 3600, contentType: String? = nil,
        at time: AWSTimestamp = .now
    ) throws(AWSClientError) -> String {
        try S3Names.validate(bucket: bucket, key: key)
        let url = objectURL(bucket: bucket, key: key)
        let headers: [(name: String, value: String)] = contentType.map { [("content-type", $0)] } ?? []
        let signer = SigV4Signer(credentials: credentials, region: region, service: "s3")
        return try signer.presign(method: method.rawValue, url: url, headers: headers, expires: seconds, at: time).description
    }

    /// A presigned POST: the form a browser submits to upload straight to S3. The policy holds
    /// `conditions`, then the bucket, the key (a `starts-with` condition when the key ends with
    /// `${filename}`), and the signing fields, as botocore writes it.
    public func presignedPost(
        bucket: String, key: String, fields: [(name: String, value: String)] = [], conditions: [PostPolicyCondition] = [],
        expiresIn seconds: Int = 3600, at time: AWSTimestamp = .now
    ) throws(AWSClientError) -> PresignedPost {
        try S3Names.validate(bucket: bucket, key: key)
        guard seconds >= 1, seconds <= SigV4Signer.maxPresignExpiry else {
            throw .invalidArgument("a presigned POST expires after 1 to \(SigV4Signer.maxPresignExpiry) seconds (7 days), not \(seconds)")
        }
        for condition in conditions {
            if case .contentLengthRange(let min, let max) = condition, min < 0 || max < min {
                throw .invalidArgument("content-length-range needs 0 ≤ min ≤ max, got \(min)...\(max)")
            }
        }
        let signer = SigV4Signer(credentials: credentials, region: region, service: "s3")
        var allConditions = conditions.map(\.json)
        allConditions.append(.object([("bucket", .string(bucket))]))
        let filenameVariable = "${filename}"
        if key.hasSuffix(filenameVariable) {
            allConditions.append(.array([.string("starts-with"), .string("$key"), .string(String(key.dropLast(filenameVariable.count)))]))
        } else {
            allConditions.append(.object([("key", .string(key))]))
        }
        var formFields = fields.filter { $0.name != "key" }.map { PresignedPost.Field(name: $0.name, value: $0.value) }
        formFields.append(.init(name: "key", value: key))
        var signing: [(String, String)] = [
            ("x-amz-algorithm", SigV4Signer.algorithm),
            ("x-amz-credential", "\(credentials.accessKeyID)/\(signer.scope(at: time))"),
            ("x-amz-date", time.amzDate),
        ]
        if let token = credentials.sessionToken { signing.append(("x-amz-security-token", token)) }
        for (name, value) in signing {
            formFields.append(.init(name: name, value: value))
            allConditions.append(.object([(name, .string(value))]))
        }
        let policy = PythonJSON.dumps(.object([
            ("expiration", .string(time.adding(seconds: Int64(seconds)).iso8601)),
            ("conditions", .array(allConditions)),
        ]))
        let encodedPolicy = Base64.encode(Array(policy.utf8))
        formFields.append(.init(name: "policy", value: encodedPolicy))
        formFields.append(.init(name: "x-amz-signature", value: signer.signature(stringToSign: encodedPolicy, at: time)))
        var url = bucketURL(bucket)
        // botocore's form URL: `https://bucket.s3.amazonaws.com/`, or `http://host/bucket` for path style.
        if url.encodedPath == "/" + URIEncoding.encode(bucket) + "/" { url.encodedPath.removeLast() }
        return PresignedPost(url: url.description, fields: formFields)
    }

    /// Whether the bucket goes in the host name.
    func usesVirtualHost(_ bucket: String) -> Bool {
        switch addressing {
        case .path: false
        case .virtual: true
        case .auto: endpoint == nil && S3Names.isDNSCompatible(bucket)
        }
    }

    /// The URL of a bucket, ending with `/`.
    public func bucketURL(_ bucket: String) -> RequestURL {
        var base = endpoint ?? RequestURL(scheme: "https", host: region == "us-east-1" ? "s3.amazonaws.com" : "s3.\(region).\(AWSConfiguration.dnsSuffix(for: region))")
        let prefix = base.encodedPath.hasSuffix("/") ? String(base.encodedPath.dropLast()) : base.encodedPath
        if usesVirtualHost(bucket) {
            base.host = "\(bucket).\(base.host)"
            base.encodedPath = prefix + "/"
        } else {
            base.encodedPath = prefix + "/" + URIEncoding.encode(bucket) + "/"
        }
        base.queryItems = []
        return base
    }

    /// The URL of an object: the key encoded once, slashes kept.
    public func objectURL(bucket: String, key: String) -> RequestURL {
        var url = bucketURL(bucket)
        url.encodedPath += URIEncoding.encode(key, keepingSlashes: true)
        return url
    }
}

/// S3's rules for bucket names and keys, checked before anything is sent.
public enum S3Names {
    static func validate(bucket: String, key: String?) throws(AWSClientError) {
        guard isValidBucket(bucket) else {
            throw .invalidArgument("invalid bucket name \"\(bucket)\": 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit")
        }
        if let key {
            guard !key.isEmpty else { throw .invalidArgument("an object key must not be empty") }
            guard key.utf8.count <= 1024 else { throw .invalidArgument("an object key is at most 1024 bytes of UTF-8, this one has \(key.utf8.count)") }
        }
    }

    /// A valid bucket name: 3–63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or
    /// digit, not shaped like an IP address, and without a prefix or suffix S3 reserves (S3 user guide, bucket naming rules).
    public static func isValidBucket(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return false }
        func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        guard isLowerAlphanumeric(bytes.first!), isLowerAlphanumeric(bytes.last!) else { return false }
        var previous: UInt8 = 0
        for byte in bytes {
            guard isLowerAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") else { return false }
            if byte == UInt8(ascii: "."), previous == UInt8(ascii: ".") { return false }
            previous = byte
        }
        // Not formatted like an IP address, and none of the prefixes and suffixes S3 reserves.
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count == 4, labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) { return false }
        for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] where name.hasPrefix(prefix) { return false }
        for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] where name.hasSuffix(suffix) { return false }
        return true
    }

    /// A name that can be a DNS label under TLS: no dots.
    static func isDNSCompatible(_ name: String) -> Bool { isValidBucket(name) && !name.utf8.contains(UInt8(ascii: ".")) }
}

/// Standard base64 with padding.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 2 < bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out += [alphabet[Int(value >> 18 & 63)], alphabet[Int(value >> 12 & 63)], alphabet[Int(value >> 6 & 63)], alphabet[Int(value & 63)]]
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let value = UInt32(bytes[index]) << 16
            out += [alphabet[Int(value >> 18 & 63)], alphabet[Int(value >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            out += [alphabet[Int(value >> 18 & 63)], alphabet[Int(value >> 12 & 63)], alphabet[Int(value >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes standard base64 (padding optional); `nil` for anything else.
    public static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(byte - 65)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(byte - 71)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(byte + 4)
            case UInt8(ascii: "+"): values.append(62)
            case UInt8(ascii: "/"): values.append(63)
            case UInt8(ascii: "="): continue
            default: return nil
            }
        }
        guard values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            var value: UInt32 = 0
            for (offset, sextet) in chunk.enumerated() { value |= UInt32(sextet) << (18 - 6 * offset) }
            out.append(UInt8(value >> 16 & 0xFF))
            if chunk.count > 2 { out.append(UInt8(value >> 8 & 0xFF)) }
            if chunk.count > 3 { out.append(UInt8(value & 0xFF)) }
            index += 4
        }
        return out
    }
}
