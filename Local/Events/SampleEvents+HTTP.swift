import Foundation
import MartletRuntime

extension SampleEvents {
    /// An HTTP API request; the method, path and route key fill each other in when some are missing.
    public struct HTTPOptions: Sendable {
        /// The sample HTTP API's domain.
        public static let defaultDomainName = "h1a2b3c4d5.execute-api.us-east-1.amazonaws.com"

        /// The route key's method when `nil` (POST for `ANY` or no route key).
        public var method: String?
        /// The route key's template with the path parameters filled in when `nil`, else `/jobs`.
        public var path: String?
        /// `"GET /jobs/{id}"`, `"$default"`, or `"METHOD PATH"` when `nil`.
        public var routeKey: String?
        /// Added to (and overriding) those the path gives the route key's template.
        public var pathParameters: [NameValue]
        public var query: [NameValue]
        /// Added to, or replacing, the headers curl and API Gateway send; a `cookie` header becomes `cookies`.
        public var headers: [NameValue]
        public var cookies: [NameValue]
        /// A sample job for POST, PUT and PATCH when `nil`; no body otherwise.
        public var body: String?
        /// Sends the body base64-encoded, as API Gateway does for binary content.
        public var isBase64Encoded: Bool
        public var domainName: String
        /// When API Gateway received the request.
        public var time: Date

        public init(
            method: String? = nil, path: String? = nil, routeKey: String? = nil, pathParameters: [NameValue] = [], query: [NameValue] = [],
            headers: [NameValue] = [], cookies: [NameValue] = [], body: String? = nil, isBase64Encoded: Bool = false,
            domainName: String = defaultDomainName, time: Date = Date()
        ) {
            self.method = method
            self.path = path
            self.routeKey = routeKey
            self.pathParameters = pathParameters
            self.query = query
            self.headers = headers
            self.cookies = cookies
            self.body = body
            self.isBase64Encoded = isBase64Encoded
            self.domainName = domainName
            self.time = time
        }
    }

    /// An HTTP API event in payload format 2.0, as API Gateway sends it to the route's integration.
    /// - Throws: ``SampleEventError`` when the method or path does not fit the route key, or a path parameter is missing.
    public static func http(_ options: HTTPOptions) throws(SampleEventError) -> HTTPRequest {
        let template = options.routeKey.flatMap(RouteTemplate.init)
        let method = try method(options.method, template: template)
        if let path = options.path, path.contains("?") { throw .invalidOption("the path '\(path)' has a query string; give its parameters as query parameters") }
        var pathParameters: [String: String] = [:]
        if let template, let path = options.path {
            guard let matched = template.match(path) else { throw .invalidOption("the path '\(path)' does not match the route key '\(template)'") }
            pathParameters = matched
        }
        pathParameters.merge(options.pathParameters.map { ($0.name, $0.value) }, uniquingKeysWith: { _, given in given })
        var path = options.path ?? "/jobs"
        if options.path == nil, let template { path = try template.path(with: pathParameters) }

        let text = options.body ?? (["POST", "PUT", "PATCH"].contains(method) ? "{\(sampleJob)}" : nil)
        let (headers, headerCookies) = headers(options, body: text)
        let cookies = options.cookies.map { "\($0.name)=\($0.value)" } + headerCookies
        let query = options.query.isEmpty ? nil : Dictionary(grouping: options.query, by: \.name).mapValues { $0.map(\.value).joined(separator: ",") }
        let sourceIP = headers["x-forwarded-for"]?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "198.51.100.7"
        let routeKey = options.routeKey ?? "\(method) \(path)"
        return HTTPRequest(
            routeKey: routeKey, rawPath: path, rawQueryString: options.query.map { "\(encoded($0.name))=\(encoded($0.value))" }.joined(separator: "&"),
            cookies: cookies.isEmpty ? nil : cookies, headers: headers, queryStringParameters: query,
            pathParameters: pathParameters.isEmpty ? nil : pathParameters,
            requestContext: .init(
                accountId: accountID, apiId: apiID(of: options.domainName), domainName: options.domainName,
                domainPrefix: String(options.domainName.prefix { $0 != "." }),
                http: .init(method: method, path: path, sourceIp: sourceIP, userAgent: headers["user-agent"] ?? ""),
                requestId: gatewayID(), routeKey: routeKey, stage: "$default", time: requestTime(options.time),
                timeEpoch: epochMilliseconds(options.time)
            ),
            body: text.map { options.isBase64Encoded ? base64($0) : $0 }, isBase64Encoded: options.isBase64Encoded
        )
    }

    private static func method(_ given: String?, template: RouteTemplate?) throws(SampleEventError) -> String {
        let routed = template.flatMap { $0.method == "ANY" ? nil : $0.method }
        guard let given = given?.uppercased() else { return routed ?? "POST" }
        if let routed, routed != given { throw .invalidOption("the method \(given) does not match the route key's \(routed)") }
        return given
    }

    /// Lower-cased headers, repeated ones joined with commas as HTTP APIs do, and the cookies of a `cookie` header.
    private static func headers(_ options: HTTPOptions, body: String?) -> ([String: String], [String]) {
        var headers = [
            "accept": "application/json", "host": options.domainName, "user-agent": "curl/8.5.0",
            "x-amzn-trace-id": traceHeader(options.time), "x-forwarded-for": "198.51.100.7", "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        ]
        if let body {
            headers["content-length"] = String(body.utf8.count)
            let isJSON = (try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed])) != nil
            headers["content-type"] = options.isBase64Encoded ? "application/octet-stream" : isJSON ? "application/json" : "text/plain; charset=utf-8"
        }
        var given: [String: [String]] = [:]
        for header in options.headers { given[header.name.lowercased(), default: []].append(header.value) }
        let cookies = given.removeValue(forKey: "cookie")?.flatMap { $0.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
        headers.merge(given.mapValues { $0.joined(separator: ",") }, uniquingKeysWith: { _, given in given })
        return (headers, cookies.filter { !$0.isEmpty })
    }

    private static func encoded(_ text: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// A route key's method and path template, `GET /jobs/{id}` or `ANY /files/{key+}`.
private struct RouteTemplate: CustomStringConvertible {
    let method: String
    let segments: [Substring]

    /// `nil` for `$default`.
    init?(_ routeKey: String) {
        let parts = routeKey.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[1].hasPrefix("/") else { return nil }
        method = parts[0].uppercased()
        segments = parts[1].split(separator: "/")
    }

    var description: String { "\(method) /\(segments.joined(separator: "/"))" }

    /// The path parameters when `path` fits the template, as API Gateway would route it.
    func match(_ path: String) -> [String: String]? {
        let parts = path.split(separator: "/")
        var parameters: [String: String] = [:]
        for (index, segment) in segments.enumerated() {
            if let name = Self.greedyName(segment) {
                guard index < parts.count else { return nil }
                parameters[name] = Self.decoded(parts[index...].joined(separator: "/"))
                return parameters
            }
            guard index < parts.count else { return nil }
            if let name = Self.name(segment) { parameters[name] = Self.decoded(String(parts[index])) } else if segment != parts[index] { return nil }
        }
        return parts.count == segments.count ? parameters : nil
    }

    /// The template with each `{name}` replaced by its parameter.
    func path(with parameters: [String: String]) throws(SampleEventError) -> String {
        var path = ""
        for segment in segments {
            guard let name = Self.greedyName(segment) ?? Self.name(segment) else {
                path += "/\(segment)"
                continue
            }
            guard let value = parameters[name] else {
                throw .invalidOption("give a path, or a value for the path parameter '\(name)' of the route key '\(self)'")
            }
            path += "/\(value)"
        }
        return path.isEmpty ? "/" : path
    }

    private static func name(_ segment: Substring) -> String? {
        segment.hasPrefix("{") && segment.hasSuffix("}") ? String(segment.dropFirst().dropLast()) : nil
    }

    private static func greedyName(_ segment: Substring) -> String? {
        segment.hasPrefix("{") && segment.hasSuffix("+}") ? String(segment.dropFirst().dropLast(2)) : nil
    }

    private static func decoded(_ text: String) -> String { text.removingPercentEncoding ?? text }
}
