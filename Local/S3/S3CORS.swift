import NIOHTTP1

/// A bucket's CORS configuration, as `PutBucketCors` sets it, and how S3 answers browsers with it.
public struct S3CORSConfiguration: Codable, Sendable, Equatable {
    public struct Rule: Codable, Sendable, Equatable {
        public var id: String?
        public var allowedOrigins: [String]
        public var allowedMethods: [String]
        public var allowedHeaders: [String]
        public var exposeHeaders: [String]
        public var maxAgeSeconds: Int?

        public init(
            id: String? = nil, allowedOrigins: [String], allowedMethods: [String], allowedHeaders: [String] = [], exposeHeaders: [String] = [],
            maxAgeSeconds: Int? = nil
        ) {
            self.id = id
            self.allowedOrigins = allowedOrigins
            self.allowedMethods = allowedMethods
            self.allowedHeaders = allowedHeaders
            self.exposeHeaders = exposeHeaders
            self.maxAgeSeconds = maxAgeSeconds
        }

        func allows(origin: String) -> Bool { allowedOrigins.contains { Self.wildcardMatch($0, origin, caseInsensitive: false) } }
        func allows(method: String) -> Bool { allowedMethods.contains(method) }
        func allows(header: String) -> Bool { allowedHeaders.contains { Self.wildcardMatch($0, header, caseInsensitive: true) } }

        /// `*` matches any run of characters; a pattern has at most one.
        static func wildcardMatch(_ pattern: String, _ value: String, caseInsensitive: Bool) -> Bool {
            let pattern = caseInsensitive ? pattern.lowercased() : pattern
            let value = caseInsensitive ? value.lowercased() : value
            guard let star = pattern.firstIndex(of: "*") else { return pattern == value }
            let head = pattern[..<star], tail = pattern[pattern.index(after: star)...]
            return value.count >= head.count + tail.count && value.hasPrefix(head) && value.hasSuffix(tail)
        }
    }

    public var rules: [Rule]

    public init(rules: [Rule]) { self.rules = rules }

    static let methods: Set<String> = ["GET", "PUT", "POST", "DELETE", "HEAD"]

    /// Reads a `<CORSConfiguration>` document, checking it as S3 does.
    static func parse(_ bytes: [UInt8]) throws(S3Error) -> Self {
        let root = try S3XMLNode.parse(bytes)
        guard root.name == "CORSConfiguration" else { throw S3Error.malformedXML }
        let ruleNodes = root.all("CORSRule")
        guard !ruleNodes.isEmpty, ruleNodes.count <= 100 else { throw S3Error.malformedXML }
        var rules: [Rule] = []
        for node in ruleNodes {
            func texts(_ name: String) -> [String] { node.all(name).map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) } }
            let rule = Rule(
                id: node.value("ID"), allowedOrigins: texts("AllowedOrigin"), allowedMethods: texts("AllowedMethod"), allowedHeaders: texts("AllowedHeader"),
                exposeHeaders: texts("ExposeHeader"), maxAgeSeconds: node.value("MaxAgeSeconds").flatMap(Int.init)
            )
            guard !rule.allowedOrigins.isEmpty, !rule.allowedMethods.isEmpty else { throw S3Error.malformedXML }
            for method in rule.allowedMethods where !methods.contains(method) {
                throw S3Error.invalidRequest("Found unsupported HTTP method in CORS config. Unsupported method is \(method)")
            }
            for origin in rule.allowedOrigins where origin.filter({ $0 == "*" }).count > 1 {
                throw S3Error.invalidRequest("AllowedOrigin \"\(origin)\" can not have more than one wildcard.")
            }
            rules.append(rule)
        }
        return Self(rules: rules)
    }

    /// The `<CORSConfiguration>` document `GetBucketCors` returns.
    var xml: XMLWriter {
        var xml = XMLWriter()
        xml.element("CORSConfiguration", namespace: true) { xml in
            for rule in rules {
                xml.element("CORSRule") { xml in
                    if let id = rule.id { xml.element("ID", id) }
                    for header in rule.allowedHeaders { xml.element("AllowedHeader", header) }
                    for method in rule.allowedMethods { xml.element("AllowedMethod", method) }
                    for origin in rule.allowedOrigins { xml.element("AllowedOrigin", origin) }
                    for header in rule.exposeHeaders { xml.element("ExposeHeader", header) }
                    if let age = rule.maxAgeSeconds { xml.element("MaxAgeSeconds", String(age)) }
                }
            }
        }
        return xml
    }

    /// The first rule allowing `origin` to use `method` with `headers`.
    func rule(origin: String, method: String, headers: [String] = []) -> Rule? {
        rules.first { $0.allows(origin: origin) && $0.allows(method: method) && headers.allSatisfy($0.allows(header:)) }
    }

    /// The answer to a preflight `OPTIONS` request.
    func preflight(_ headers: HTTPHeaders) throws(S3Error) -> [(String, String)] {
        guard let origin = headers.first(name: "Origin") else {
            throw S3Error(.badRequest, "BadRequest", "Insufficient information. Origin request header needed.")
        }
        guard let method = headers.first(name: "Access-Control-Request-Method") else {
            throw S3Error(.badRequest, "BadRequest", "Invalid Access-Control-Request-Method: null")
        }
        let requested = headers[canonicalForm: "Access-Control-Request-Headers"].map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        guard let rule = rule(origin: origin, method: method, headers: requested) else { throw Self.notAllowed }
        var answer = Self.allowOrigin(rule, origin: origin)
        answer.append(("Access-Control-Allow-Methods", rule.allowedMethods.joined(separator: ", ")))
        if !requested.isEmpty { answer.append(("Access-Control-Allow-Headers", requested.joined(separator: ", "))) }
        if !rule.exposeHeaders.isEmpty { answer.append(("Access-Control-Expose-Headers", rule.exposeHeaders.joined(separator: ", "))) }
        if let age = rule.maxAgeSeconds { answer.append(("Access-Control-Max-Age", String(age))) }
        answer.append(("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"))
        return answer
    }

    /// The CORS headers of an actual (non-preflight) request from a browser; empty when no rule applies.
    func responseHeaders(origin: String, method: String) -> [(String, String)] {
        guard let rule = rule(origin: origin, method: method == "HEAD" ? "HEAD" : method) else { return [] }
        var answer = Self.allowOrigin(rule, origin: origin)
        answer.append(("Access-Control-Allow-Methods", rule.allowedMethods.joined(separator: ", ")))
        if !rule.exposeHeaders.isEmpty { answer.append(("Access-Control-Expose-Headers", rule.exposeHeaders.joined(separator: ", "))) }
        if let age = rule.maxAgeSeconds { answer.append(("Access-Control-Max-Age", String(age))) }
        answer.append(("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"))
        return answer
    }

    private static func allowOrigin(_ rule: Rule, origin: String) -> [(String, String)] {
        rule.allowedOrigins == ["*"]
            ? [("Access-Control-Allow-Origin", "*")]
            : [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true")]
    }

    static let notAllowed = S3Error(
        .forbidden, "AccessForbidden",
        "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."
    )
    static let notEnabled = S3Error(.forbidden, "AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.")
}
