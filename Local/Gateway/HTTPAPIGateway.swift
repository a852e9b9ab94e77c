import Foundation
import Logging
import MartletRuntime
import NIOCore
import NIOHTTP1

/// One route of an HTTP API: `GET /jobs/{id}` → a function.
public struct HTTPAPIRoute: Sendable {
    public var method: String
    public var path: String
    public var function: String
    /// The function streams its responses: the gateway passes them on as they arrive.
    public var streamsResponse = false

    public init(method: String, path: String, function: String) {
        self.method = method.uppercased()
        self.path = path
        self.function = function
    }

    public var routeKey: String { path == "$default" ? "$default" : "\(method) \(path)" }

    /// The path parameters when `requestPath` matches (`{name}` one segment, `{name+}` the rest).
    func match(_ requestPath: String) -> [String: String]? {
        if path == "$default" { return [:] }
        let pattern = path.split(separator: "/", omittingEmptySubsequences: true)
        let segments = requestPath.split(separator: "/", omittingEmptySubsequences: true)
        var parameters: [String: String] = [:]
        for (index, part) in pattern.enumerated() {
            if part.hasPrefix("{"), part.hasSuffix("+}") {
                guard index < segments.count else { return nil }
                parameters[String(part.dropFirst().dropLast(2))] = segments[index...].joined(separator: "/")
                return parameters
            }
            guard index < segments.count else { return nil }
            if part.hasPrefix("{"), part.hasSuffix("}") {
                parameters[String(part.dropFirst().dropLast())] = URIDecoding.decode(segments[index])
            } else if part != segments[index] {
                return nil
            }
        }
        return segments.count == pattern.count ? parameters : nil
    }
}

/// CORS as an HTTP API's `CorsConfiguration` sets it.
public struct HTTPAPICORS: Sendable {
    public var allowOrigins: [String]
    public var allowMethods: [String]
    public var allowHeaders: [String]
    public var exposeHeaders: [String]
    public var maxAge: Int?
    public var allowCredentials: Bool

    public init(allowOrigins: [String], allowMethods: [String], allowHeaders: [String], exposeHeaders: [String] = [], maxAge: Int? = nil, allowCredentials: Bool = false) {
        self.allowOrigins = allowOrigins
        self.allowMethods = allowMethods
        self.allowHeaders = allowHeaders
        self.exposeHeaders = exposeHeaders
        self.maxAge = maxAge
        self.allowCredentials = allowCredentials
    }

    func allows(origin: String) -> Bool { allowOrigins.contains("*") || allowOrigins.contains(origin) }
}

/// Invokes a function with an event and returns its report (the gateway's view of Lambda).
/// A streamed response goes to `streamTo` as it arrives, when given.
public typealias FunctionInvocation = @Sendable (
    _ function: String, _ event: ByteBuffer, _ timeout: Duration, _ streamTo: (@Sendable (ByteBuffer) async -> Void)?
) async -> InvocationReport?

/// API Gateway's HTTP API (payload format 2.0) in front of local functions: routes from the
/// template, events as API Gateway builds them, responses mapped back as it maps them, CORS,
/// 404 for no route, 500 for a function error and 503 when the 30-second integration timeout passes.
public struct HTTPAPIGateway: Sendable {
    public var routes: [HTTPAPIRoute]
    public var cors: HTTPAPICORS?
    public var apiID = "local"
    /// API Gateway's integration timeout for HTTP APIs.
    public var integrationTimeout: Duration = .seconds(30)
    let invoke: FunctionInvocation
    let logger: Logger

    public init(routes: [HTTPAPIRoute], cors: HTTPAPICORS?, logger: Logger, invoke: @escaping FunctionInvocation) {
        self.routes = routes
        self.cors = cors
        self.logger = logger
        self.invoke = invoke
    }

    public func answer(_ request: HTTPServerRequest) async -> HTTPServerResponse {
        let origin = request.headers.first(name: "Origin")
        let path = String(request.path)
        if request.method == .OPTIONS, let cors, let origin, request.headers.first(name: "Access-Control-Request-Method") != nil {
            guard cors.allows(origin: origin) else { return .json(.noContent, "") }
            var headers: HTTPHeaders = [
                "Access-Control-Allow-Origin": cors.allowOrigins.contains("*") && !cors.allowCredentials ? "*" : origin,
                "Access-Control-Allow-Methods": cors.allowMethods.joined(separator: ","),
                "Access-Control-Allow-Headers": cors.allowHeaders.joined(separator: ","),
                "Vary": "Origin",
            ]
            if let age = cors.maxAge { headers.add(name: "Access-Control-Max-Age", value: String(age)) }
            if cors.allowCredentials { headers.add(name: "Access-Control-Allow-Credentials", value: "true") }
            return HTTPServerResponse(status: .noContent, headers: headers)
        }
        var response = await route(request, path: path)
        if let cors, let origin, cors.allows(origin: origin) {
            response.headers.replaceOrAdd(name: "Access-Control-Allow-Origin", value: cors.allowOrigins.contains("*") && !cors.allowCredentials ? "*" : origin)
            if !cors.exposeHeaders.isEmpty { response.headers.replaceOrAdd(name: "Access-Control-Expose-Headers", value: cors.exposeHeaders.joined(separator: ",")) }
            if cors.allowCredentials { response.headers.replaceOrAdd(name: "Access-Control-Allow-Credentials", value: "true") }
            response.headers.add(name: "Vary", value: "Origin")
        }
        return response
    }

    private func route(_ request: HTTPServerRequest, path: String) async -> HTTPServerResponse {
        let method = request.method.rawValue
        let candidates = routes.filter { $0.path != "$default" && ($0.method == method || $0.method == "ANY") }
        // Most specific first: fewer parameters, then longer paths.
        let ordered = candidates.sorted { ($0.path.filter { $0 == "{" }.count, -$0.path.count) < ($1.path.filter { $0 == "{" }.count, -$1.path.count) }
        var matched: (HTTPAPIRoute, [String: String])?
        for route in ordered { if let parameters = route.match(path) { matched = (route, parameters); break } }
        if matched == nil, let fallback = routes.first(where: { $0.path == "$default" }) { matched = (fallback, [:]) }
        guard let (route, parameters) = matched else { return Self.message(.notFound, "Not Found") }
        let requestID = RequestID.make()
        let event = Self.event(request, route: route, pathParameters: parameters, apiID: apiID, requestID: requestID)
        if route.streamsResponse { return await streamedResponse(route: route, event: ByteBuffer(bytes: event), requestID: requestID) }
        guard let report = await invoke(route.function, ByteBuffer(bytes: event), integrationTimeout, nil) else {
            logger.warning("The integration timed out", metadata: ["route": "\(route.routeKey)"])
            return Self.message(.serviceUnavailable, "Service Unavailable", requestID: requestID)
        }
        return Self.response(for: report, requestID: requestID)
    }

    /// Maps a finished invocation to the client's response.
    static func response(for report: InvocationReport, requestID: String) -> HTTPServerResponse {
        switch report.outcome {
        case .success(let body, let contentType) where contentType == ResponseStream.httpIntegrationContentType:
            // A streamed HTTP response, collected: its prelude carries status, headers and cookies.
            guard let (head, bodyStart) = StreamedHTTPHead.parse(body) else {
                return Self.message(.internalServerError, "Internal Server Error", requestID: requestID)
            }
            var response = head.response(requestID: requestID)
            response.body = body.getSlice(at: body.readerIndex + bodyStart, length: body.readableBytes - bodyStart) ?? ByteBuffer()
            return response
        case .success(let body, _): return Self.response(fromFunction: body, requestID: requestID)
        case .platformError(let error) where error.errorType == "TooManyRequestsException":
            return Self.message(.tooManyRequests, "Too Many Requests", requestID: requestID)
        default:
            return Self.message(.internalServerError, "Internal Server Error", requestID: requestID)
        }
    }

    /// A route whose function streams: the response starts with the function's first bytes (the
    /// HTTP prelude gives status, headers and cookies) and goes on chunk by chunk; a function that
    /// answers without streaming is answered as usual.
    func streamedResponse(route: HTTPAPIRoute, event: ByteBuffer, requestID: String) async -> HTTPServerResponse {
        let invoke = self.invoke
        let (events, invocation) = startStreamedInvocation { streamTo in await invoke(route.function, event, integrationTimeout, streamTo) }
        var iterator = events.makeAsyncIterator()
        // Read up to the end of the prelude (eight NUL bytes), which may span chunks.
        var head = ByteBuffer()
        var parsed: (StreamedHTTPHead, Int)?
        while parsed == nil {
            switch await iterator.next() {
            case .chunk(var chunk)?:
                head.writeBuffer(&chunk)
                parsed = StreamedHTTPHead.parse(head)
                if parsed == nil, head.readableBytes > StreamedHTTPHead.maxSize {
                    invocation.cancel()
                    return Self.message(.internalServerError, "Internal Server Error", requestID: requestID)
                }
            case .done(let report)?:
                guard let report else { return Self.message(.serviceUnavailable, "Service Unavailable", requestID: requestID) }
                return Self.response(for: report, requestID: requestID)
            case nil:
                return Self.message(.internalServerError, "Internal Server Error", requestID: requestID)
            }
        }
        let (prelude, bodyStart) = parsed!
        var response = prelude.response(requestID: requestID)
        let (body, output) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
        if let rest = head.getSlice(at: head.readerIndex + bodyStart, length: head.readableBytes - bodyStart), rest.readableBytes > 0 { output.yield(rest) }
        Task { [logger] in
            while let event = await iterator.next() {
                switch event {
                case .chunk(let chunk): output.yield(chunk)
                case .done(let report):
                    // A failure after the head has gone can only cut the response short.
                    if let report, report.outcome.isSuccess {
                        output.finish()
                    } else {
                        logger.warning("A streamed response failed mid-way", metadata: ["route": "\(route.routeKey)"])
                        output.finish(throwing: StreamedResponseError(outcome: report?.outcome ?? .platformError(.init(errorType: "Timeout", errorMessage: "timed out"))))
                    }
                }
            }
            output.finish()
        }
        response.bodyStream = body
        return response
    }

    static func message(_ status: HTTPResponseStatus, _ text: String, requestID: String? = nil) -> HTTPServerResponse {
        var headers: HTTPHeaders = [:]
        if let requestID { headers.add(name: "apigw-requestid", value: requestID) }
        return .json(status, "{\"message\":\(JSONString.quoted(text))}", headers: headers)
    }

    /// The payload 2.0 event API Gateway sends for `request`.
    static func event(_ request: HTTPServerRequest, route: HTTPAPIRoute, pathParameters: [String: String], apiID: String, requestID: String) -> [UInt8] {
        var headers: [String: String] = [:]
        var cookies: [String] = []
        for (name, value) in request.headers {
            let lower = name.lowercased()
            if lower == "cookie" {
                cookies += value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                continue
            }
            headers[lower] = headers[lower].map { "\($0),\(value)" } ?? value
        }
        var query: [String: String] = [:]
        for (name, value) in SignatureVerifier.queryPairs(request.query) { query[name] = query[name].map { "\($0),\(value)" } ?? value }
        let bytes = Array(request.body.readableBytesView)
        let contentType = headers["content-type"] ?? ""
        let isText = bytes.isEmpty || contentType.hasPrefix("text/") || contentType.contains("json") || contentType.contains("xml")
            || contentType.contains("x-www-form-urlencoded") || (contentType.isEmpty && String(validating: bytes, as: UTF8.self) != nil)
        let now = Date()
        let event = HTTPRequest(
            routeKey: route.routeKey, rawPath: String(request.path), rawQueryString: String(request.query ?? ""), cookies: cookies.isEmpty ? nil : cookies,
            headers: headers, queryStringParameters: query.isEmpty ? nil : query, pathParameters: pathParameters.isEmpty ? nil : pathParameters,
            requestContext: .init(
                accountId: "000000000000", apiId: apiID, domainName: headers["host"] ?? "localhost", domainPrefix: apiID,
                http: .init(method: request.method.rawValue, path: String(request.path), sourceIp: "127.0.0.1", userAgent: headers["user-agent"] ?? ""),
                requestId: requestID, routeKey: route.routeKey, stage: "$default", time: SampleEvents.requestTime(now), timeEpoch: Int64(now.timeIntervalSince1970 * 1000)
            ),
            body: bytes.isEmpty ? nil : (isText ? String(decoding: bytes, as: UTF8.self) : Data(bytes).base64EncodedString()), isBase64Encoded: !isText
        )
        return (try? Array(JSONEncoder().encode(event))) ?? []
    }

    /// API Gateway's mapping of a payload 2.0 response: an object with `statusCode` is used as the
    /// response; any other valid JSON becomes a 200 `application/json` body.
    static func response(fromFunction body: ByteBuffer, requestID: String) -> HTTPServerResponse {
        let bytes = Data(body.readableBytesView)
        var headers: HTTPHeaders = ["apigw-requestid": requestID]
        if let object = try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed]) as? [String: Any], object["statusCode"] != nil {
            let status = (object["statusCode"] as? Int) ?? Int((object["statusCode"] as? String) ?? "") ?? 500
            for (name, value) in (object["headers"] as? [String: Any]) ?? [:] { headers.replaceOrAdd(name: name, value: "\(value)") }
            for (name, values) in (object["multiValueHeaders"] as? [String: [Any]]) ?? [:] {
                for value in values { headers.add(name: name, value: "\(value)") }
            }
            for cookie in (object["cookies"] as? [String]) ?? [] { headers.add(name: "Set-Cookie", value: cookie) }
            var data = ByteBuffer()
            if let text = object["body"] as? String {
                if object["isBase64Encoded"] as? Bool == true, let decoded = Data(base64Encoded: text) {
                    data = ByteBuffer(bytes: decoded)
                } else {
                    data = ByteBuffer(string: text)
                }
            }
            if headers.first(name: "Content-Type") == nil, data.readableBytes > 0 { headers.add(name: "Content-Type", value: "text/plain; charset=utf-8") }
            return HTTPServerResponse(status: HTTPResponseStatus(statusCode: status), headers: headers, body: data)
        }
        if (try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed])) != nil {
            headers.add(name: "Content-Type", value: "application/json")
            return HTTPServerResponse(status: .ok, headers: headers, body: body)
        }
        return message(.internalServerError, "Internal Server Error", requestID: requestID)
    }
}

enum URIDecoding {
    static func decode(_ text: Substring) -> String { text.removingPercentEncoding ?? String(text) }
}

/// The prelude of a streamed HTTP response: JSON with `statusCode`, `headers` and `cookies`, then
/// eight NUL bytes, then the body.
struct StreamedHTTPHead: Decodable {
    /// The prelude must end within the stream's first 16 KB.
    static let maxSize = 16 * 1024

    var statusCode: Int?
    var headers: [String: String]?
    var cookies: [String]?

    /// The head and where the body starts, once `bytes` hold the whole prelude.
    static func parse(_ bytes: ByteBuffer) -> (StreamedHTTPHead, Int)? {
        let view = bytes.readableBytesView
        var zeros = 0
        var offset = 0
        for byte in view {
            offset += 1
            zeros = byte == 0 ? zeros + 1 : 0
            if zeros == 8 {
                let json = Data(view.prefix(offset - 8))
                guard let head = try? JSONDecoder().decode(StreamedHTTPHead.self, from: json.isEmpty ? Data("{}".utf8) : json) else { return nil }
                return (head, offset)
            }
        }
        return nil
    }

    func response(requestID: String) -> HTTPServerResponse {
        var headers = HTTPHeaders()
        for (name, value) in (self.headers ?? [:]).sorted(by: { $0.key < $1.key }) { headers.add(name: name, value: value) }
        for cookie in cookies ?? [] { headers.add(name: "Set-Cookie", value: cookie) }
        headers.add(name: "apigw-requestid", value: requestID)
        return HTTPServerResponse(status: HTTPResponseStatus(statusCode: statusCode ?? 200), headers: headers)
    }
}
