/// A request target as SigV4 sees it: scheme, host, port, the path and query exactly as they are
/// sent (already percent-encoded), so that what is signed is byte for byte what goes on the wire.
///
/// ```swift
/// var url = RequestURL(scheme: "https", host: "bucket.s3.amazonaws.com", encodedPath: "/" + URIEncoding.encode(key, keepingSlashes: true))
/// url.appendQueryItem(name: "versionId", value: "3")
/// ```
public struct RequestURL: Sendable, Hashable, CustomStringConvertible {
    /// One query parameter, percent-encoded.
    public struct QueryItem: Sendable, Hashable {
        public var encodedName: String
        public var encodedValue: String

        public init(encodedName: String, encodedValue: String) {
            self.encodedName = encodedName
            self.encodedValue = encodedValue
        }
    }

    public var scheme: String
    public var host: String
    /// `nil` for the scheme's default port.
    public var port: Int?
    /// The path, percent-encoded; starts with `/`.
    public var encodedPath: String
    public var queryItems: [QueryItem]

    public init(scheme: String, host: String, port: Int? = nil, encodedPath: String = "/", queryItems: [QueryItem] = []) {
        self.scheme = scheme.lowercased()
        self.host = host
        self.port = port
        self.encodedPath = encodedPath.isEmpty ? "/" : encodedPath
        self.queryItems = queryItems
        if port == Self.defaultPort(for: self.scheme) { self.port = nil }
    }

    /// Parses `scheme://host[:port][/path][?query]`. Characters that cannot appear in a URL
    /// (spaces, non-ASCII) are percent-encoded; existing escapes in the path are kept as they are,
    /// and query parameters are re-encoded as SigV4 canonicalises them.
    public init?(string: String) {
        guard let schemeEnd = string.firstRange(of: "://") else { return nil }
        let scheme = String(string[..<schemeEnd.lowerBound]).lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        var rest = string[schemeEnd.upperBound...]
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard !authority.isEmpty, !authority.contains(Character("@")) else { return nil }
        var host = String(authority)
        var port: Int?
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65535).contains(number) else { return nil }
            port = number
            host = String(authority[..<colon])
        }
        let pathAndQuery = rest[authorityEnd...]
        let parts = pathAndQuery.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? ""
        var items: [QueryItem] = []
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                // Query items in SigV4's canonical encoding (`/` as `%2F`, …), as servers recompute it.
                let nameAndValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                func canonical(_ text: Substring) -> String {
                    URIEncoding.decode(text, plusAsSpace: false).map { URIEncoding.encode($0) } ?? URIEncoding.escapingUnsafe(text)
                }
                items.append(QueryItem(encodedName: canonical(nameAndValue[0]), encodedValue: nameAndValue.count > 1 ? canonical(nameAndValue[1]) : ""))
            }
        }
        self.init(scheme: scheme, host: host.lowercased(), port: port, encodedPath: URIEncoding.escapingUnsafe(path), queryItems: items)
    }

    /// Adds a query parameter, encoding name and value.
    public mutating func appendQueryItem(name: String, value: String) {
        queryItems.append(QueryItem(encodedName: URIEncoding.encode(name), encodedValue: URIEncoding.encode(value)))
    }

    /// The `Host` header: the host, with the port when it is not the scheme's default.
    public var hostHeader: String {
        if let port { return "\(host):\(port)" }
        return host
    }

    /// The path and query as sent in the request line.
    public var requestTarget: String {
        queryItems.isEmpty ? encodedPath : encodedPath + "?" + encodedQuery
    }

    /// The query as sent, without `?`.
    public var encodedQuery: String {
        var query = ""
        query.reserveCapacity(queryItems.reduce(0) { $0 + $1.encodedName.utf8.count + $1.encodedValue.utf8.count + 2 })
        for (index, item) in queryItems.enumerated() {
            if index > 0 { query += "&" }
            query += item.encodedName
            query += "="
            query += item.encodedValue
        }
        return query
    }

    /// The whole URL.
    public var description: String { "\(scheme)://\(hostHeader)\(requestTarget)" }

    static func defaultPort(for scheme: String) -> Int? {
        switch scheme {
        case "http": 80
        case "https": 443
        default: nil
        }
    }
}
