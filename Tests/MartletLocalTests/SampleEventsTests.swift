import Crypto
import Foundation
import MartletLocal
import MartletRuntime
import MartletTestSupport
import NIOCore
import Testing

@Suite("Sample events")
struct SampleEventsTests {
    /// 27 Nov 2026 06:30:00.250 UTC.
    private static let time = Date(timeIntervalSince1970: 1_795_761_000.25)

    /// The event as `martlet events` prints it, decoded again with our event types.
    private func decoded<Event: Decodable>(_ event: some Encodable, as type: Event.Type = Event.self) throws -> Event {
        try JSONDecoder().decode(Event.self, from: Data(try SampleEvents.json(event).utf8))
    }

    private func isGatewayID(_ id: String) -> Bool {
        id.utf8.count == 16 && id.hasSuffix("=") && id.dropLast().allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }

    // MARK: Decoding, with the fields the options name

    @Test("$connect by default: API Gateway's ids, times, identity and upgrade headers, single and multi-valued")
    func connectDefaults() throws {
        let event: WebSocketRequest = try decoded(SampleEvents.webSocketConnect(.init(api: .init(time: Self.time))))
        let context = event.requestContext
        #expect(context.routeKey == "$connect" && context.eventType == .connect && context.messageDirection == "IN")
        #expect(isGatewayID(context.connectionId) && isGatewayID(context.requestId))
        #expect(context.requestTime == "27/Nov/2026:06:30:00 +0000" && context.requestTimeEpoch == 1_795_761_000_250)
        #expect(context.domainName == "abc123defg.execute-api.us-east-1.amazonaws.com" && context.apiId == "abc123defg")
        #expect(context.stage == "prod" && context.identity.sourceIp == "203.0.113.9")
        #expect(event.header("host") == context.domainName && event.header("x-forwarded-for") == "203.0.113.9")
        #expect(Base64.decode(event.header("sec-websocket-key") ?? "")?.count == 16)
        #expect(event.multiValueHeaders == event.headers?.mapValues { [$0] })
        #expect(event.queryStringParameters == nil && event.body == nil)
    }

    @Test("$connect with options: connection, stage, domain, replaced and repeated headers, query")
    func connectOptions() throws {
        let options = SampleEvents.WebSocketConnectOptions(
            api: .init(connectionID: "Abc123Def456Gh=", stage: "dev", domainName: "ws.example.com", time: Self.time),
            headers: [NameValue("host", "ws.example.com"), NameValue("X-Tag", "a"), NameValue("X-Tag", "b"), NameValue("X-Forwarded-For", "198.51.100.1")],
            query: [NameValue("key", "local-dev-key"), NameValue("tag", "x"), NameValue("tag", "y")]
        )
        let event: WebSocketRequest = try decoded(SampleEvents.webSocketConnect(options))
        #expect(event.requestContext.connectionId == "Abc123Def456Gh=" && event.requestContext.stage == "dev")
        #expect(event.requestContext.domainName == "ws.example.com" && event.requestContext.apiId == "abc123defg")
        #expect(event.headers?["host"] == "ws.example.com" && event.headers?["Host"] == nil)
        #expect(event.headers?["X-Tag"] == "b" && event.multiValueHeaders?["X-Tag"] == ["a", "b"])
        #expect(event.requestContext.identity.sourceIp == "198.51.100.1")
        #expect(event.queryStringParameters == ["key": "local-dev-key", "tag": "y"])
        #expect(event.multiValueQueryStringParameters == ["key": ["local-dev-key"], "tag": ["x", "y"]])
    }

    @Test("Messages carry the route key, a message id and the body, base64-encoded when asked")
    func message() throws {
        let submit: WebSocketRequest = try decoded(SampleEvents.webSocketMessage(.init()))
        #expect(submit.requestContext.routeKey == "submit" && submit.requestContext.eventType == .message)
        #expect(submit.requestContext.messageId.map(isGatewayID) == true && submit.requestContext.identity.userAgent != nil)
        #expect(submit.requestContext.connectedAt < submit.requestContext.requestTimeEpoch)
        let body = try JSONDecoder().decode([String: JSONValue].self, from: Data((submit.body ?? "").utf8))
        #expect(body["action"] == .string("submit") && body["model"] == .string("demo"))

        let options = SampleEvents.WebSocketMessageOptions(api: .init(connectionID: "Conn0000000000A="), routeKey: "status", body: "héllo", isBase64Encoded: true)
        let binary: WebSocketRequest = try decoded(SampleEvents.webSocketMessage(options))
        #expect(binary.requestContext.routeKey == "status" && binary.requestContext.connectionId == "Conn0000000000A=")
        #expect(binary.isBase64Encoded && Base64.decode(binary.body ?? "") == Array("héllo".utf8))
        #expect(try decoded(SampleEvents.webSocketMessage(.init(routeKey: "status")), as: WebSocketRequest.self).body == #"{"action":"status"}"#)
    }

    @Test("$disconnect carries the close code and reason, and API Gateway's few headers")
    func disconnect() throws {
        let event: WebSocketRequest = try decoded(SampleEvents.webSocketDisconnect(.init(api: .init(connectionID: "Conn0000000000A="), statusCode: 1001, reason: "going away")))
        #expect(event.requestContext.routeKey == "$disconnect" && event.requestContext.eventType == .disconnect)
        #expect(event.requestContext.disconnectStatusCode == 1001 && event.requestContext.disconnectReason == "going away")
        #expect(event.requestContext.connectionId == "Conn0000000000A=" && event.header("x-api-key") == "")
        let defaults: WebSocketRequest = try decoded(SampleEvents.webSocketDisconnect(.init()))
        #expect(defaults.requestContext.disconnectStatusCode == 1000 && defaults.requestContext.disconnectReason == "")
    }

    @Test("HTTP by default: POST /jobs with a JSON sample job, its length and type, in payload format 2.0")
    func httpDefaults() throws {
        let event: HTTPRequest = try decoded(try SampleEvents.http(.init(time: Self.time)))
        #expect(event.version == "2.0" && event.routeKey == "POST /jobs" && event.rawPath == "/jobs" && event.rawQueryString == "")
        #expect(event.requestContext.http.method == "POST" && event.requestContext.http.path == "/jobs")
        #expect(event.requestContext.time == "27/Nov/2026:06:30:00 +0000" && event.requestContext.timeEpoch == 1_795_761_000_250)
        #expect(event.requestContext.apiId == "h1a2b3c4d5" && event.requestContext.domainPrefix == "h1a2b3c4d5")
        #expect(isGatewayID(event.requestContext.requestId) && event.requestContext.stage == "$default")
        #expect(event.header("content-type") == "application/json" && event.header("content-length") == String(event.body?.utf8.count ?? 0))
        #expect(event.requestContext.http.sourceIp == event.header("x-forwarded-for"))
        #expect(event.pathParameters == nil && event.cookies == nil && !event.isBase64Encoded)
    }

    @Test("HTTP with options: the route key's path parameters from the path, query, headers, cookies")
    func httpOptions() throws {
        let options = SampleEvents.HTTPOptions(
            path: "/jobs/123", routeKey: "GET /jobs/{id}", query: [NameValue("a", "b c"), NameValue("tag", "x"), NameValue("tag", "y")],
            headers: [NameValue("X-Api-Key", "k1"), NameValue("Cookie", "theme=dark; lang=en")], cookies: [NameValue("session", "s1")]
        )
        let event: HTTPRequest = try decoded(try SampleEvents.http(options))
        #expect(event.routeKey == "GET /jobs/{id}" && event.requestContext.http.method == "GET" && event.rawPath == "/jobs/123")
        #expect(event.pathParameters == ["id": "123"])
        #expect(event.rawQueryString == "a=b%20c&tag=x&tag=y" && event.queryStringParameters == ["a": "b c", "tag": "x,y"])
        #expect(event.headers?["x-api-key"] == "k1" && event.header("cookie") == nil)
        #expect(event.cookies == ["session=s1", "theme=dark", "lang=en"])
        #expect(event.body == nil && event.header("content-length") == nil)
    }

    @Test("HTTP fills a route key's template from path parameters, and base64-encodes a body when asked")
    func httpTemplateAndBinary() throws {
        let options = SampleEvents.HTTPOptions(
            routeKey: "PUT /files/{key+}", pathParameters: [NameValue("key", "a/b.png")], body: "PNG…", isBase64Encoded: true
        )
        let event: HTTPRequest = try decoded(try SampleEvents.http(options))
        #expect(event.rawPath == "/files/a/b.png" && event.requestContext.http.method == "PUT" && event.pathParameters == ["key": "a/b.png"])
        #expect(event.isBase64Encoded && event.bodyBytes == Array("PNG…".utf8))
        #expect(event.header("content-length") == "6" && event.header("content-type") == "application/octet-stream")
    }

    @Test("HTTP refuses options API Gateway could not have routed")
    func httpContradictions() {
        #expect(throws: SampleEventError.self) { try SampleEvents.http(.init(path: "/uploads", routeKey: "GET /jobs/{id}")) }
        #expect(throws: SampleEventError.self) { try SampleEvents.http(.init(method: "DELETE", routeKey: "GET /jobs/{id}", pathParameters: [NameValue("id", "1")])) }
        #expect(throws: SampleEventError.self) { try SampleEvents.http(.init(routeKey: "GET /jobs/{id}")) }
        #expect(throws: SampleEventError.self) { try SampleEvents.http(.init(path: "/jobs?x=1")) }
        #expect(throws: SampleEventError.self) { try NameValue(parsing: "novalue") }
        #expect(throws: Never.self) { try SampleEvents.http(.init(method: "delete", routeKey: "ANY /jobs")) }
    }

    @Test("SQS by default: one job message with real MD5, the system attributes and the queue's region")
    func sqsDefaults() throws {
        let event: SQSEvent = try decoded(try SampleEvents.sqs(.init(time: Self.time)))
        let record = try #require(event.records.first)
        #expect(event.records.count == 1 && record.body.hasPrefix(#"{"jobId":""#))
        #expect(record.md5OfBody == Insecure.MD5.hash(data: Array(record.body.utf8)).map { String(format: "%02x", $0) }.joined())
        #expect(Set(record.attributes.keys) == ["ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"])
        #expect(record.attributes["ApproximateFirstReceiveTimestamp"] == "1795761000250")
        #expect(record.eventSource == "aws:sqs" && record.eventSourceARN == "arn:aws:sqs:us-east-1:123456789012:martlet-jobs" && record.awsRegion == "us-east-1")
        #expect(record.receiptHandle.hasPrefix("AQEB") && UUID(uuidString: record.messageId) != nil)
        #expect(record.messageAttributes.isEmpty && record.md5OfMessageAttributes == nil)
    }

    @Test("SQS with options: one record per body, more up to the count, string attributes with their MD5")
    func sqsOptions() throws {
        let options = SampleEvents.SQSOptions(
            bodies: ["a", "b"], count: 3, queueARN: "arn:aws:sqs:eu-west-1:210987654321:renders", attributes: [NameValue("jobType", "render")]
        )
        let event: SQSEvent = try decoded(try SampleEvents.sqs(options))
        #expect(event.records.map(\.body).prefix(2) == ["a", "b"] && event.records.count == 3)
        #expect(event.records[0].md5OfBody == "0cc175b9c0f1b6a831c399e269772661")
        #expect(Set(event.records.map(\.messageId)).count == 3)
        #expect(event.records.allSatisfy { $0.awsRegion == "eu-west-1" && $0.eventSourceARN == options.queueARN })
        #expect(event.records[0].messageAttributes["jobType"]?.stringValue == "render" && event.records[0].messageAttributes["jobType"]?.dataType == "String")
        // Worked out independently with AWS's attribute-digest algorithm (it reproduces the fixture's).
        #expect(event.records[0].md5OfMessageAttributes == "d6d9d7d196a35742544074156242432a")

        #expect(throws: SampleEventError.self) { try SampleEvents.sqs(.init(queueARN: "martlet-jobs")) }
        #expect(throws: SampleEventError.self) { try SampleEvents.sqs(.init(bodies: ["a", "b"], count: 1)) }
    }

    // MARK: Through the handler registry and the routers

    private static let handlers: HandlerRegistry = {
        var registry = HandlerRegistry()
        registry.register("websocket") {
            WebSocketRouter()
                .on("$connect") { event, _ in WebSocketResponse(body: "$connect \(event.requestContext.connectionId)") }
                .on("$disconnect") { event, _ in WebSocketResponse(body: "$disconnect \(event.requestContext.disconnectStatusCode ?? 0)") }
                .on("submit") { event, _ in WebSocketResponse(body: "submit \(event.requestContext.connectionId)") }
                .on("status") { _, _ in WebSocketResponse(body: "status") }
        }
        registry.register("http") {
            HTTPRouter()
                .on("POST /jobs") { _, _ in HTTPResponse(statusCode: 202, body: "POST /jobs") }
                .on("GET /jobs/{id}") { request, _ in HTTPResponse(statusCode: 200, body: "GET /jobs/{id} id=\(request.pathParameters?["id"] ?? "-")") }
        }
        registry.register("sqs") {
            ClosureEventHandler<SQSEvent, [String]> { event, _ in event.records.map(\.body) }
        }
        return registry
    }()

    /// Runs the event through the registered handler's bytes interface, as the runtime loop does.
    private func invoke<Output: Decodable>(_ name: String, _ event: some Encodable, as: Output.Type = Output.self) async throws -> Output {
        let factory = try #require(Self.handlers.factory(for: name))
        let handler = try await factory()
        let output = try await handler.handle(ByteBuffer(string: try SampleEvents.json(event)), context: .forTesting())
        return try JSONDecoder().decode(Output.self, from: Data(output.readableBytesView))
    }

    @Test("WebSocket samples reach the route of their route key")
    func webSocketRouting() async throws {
        let api = SampleEvents.WebSocketAPI(connectionID: "Conn0000000000A=")
        let connect: WebSocketResponse = try await invoke("websocket", SampleEvents.webSocketConnect(.init(api: api)))
        #expect(connect.body == "$connect Conn0000000000A=")
        let submit: WebSocketResponse = try await invoke("websocket", SampleEvents.webSocketMessage(.init(api: api, routeKey: "submit")))
        #expect(submit.body == "submit Conn0000000000A=")
        let status: WebSocketResponse = try await invoke("websocket", SampleEvents.webSocketMessage(.init(routeKey: "status")))
        #expect(status.body == "status")
        let disconnect: WebSocketResponse = try await invoke("websocket", SampleEvents.webSocketDisconnect(.init(statusCode: 1001)))
        #expect(disconnect.body == "$disconnect 1001")
    }

    @Test("HTTP samples reach the route of their route key, with its path parameters")
    func httpRouting() async throws {
        let created: HTTPResponse = try await invoke("http", try SampleEvents.http(.init()))
        #expect(created.statusCode == 202 && created.body == "POST /jobs")
        let status: HTTPResponse = try await invoke("http", try SampleEvents.http(.init(path: "/jobs/123", routeKey: "GET /jobs/{id}")))
        #expect(status.statusCode == 200 && status.body == "GET /jobs/{id} id=123")
        let unrouted: HTTPResponse = try await invoke("http", try SampleEvents.http(.init(method: "DELETE", path: "/jobs/123")))
        #expect(unrouted.statusCode == 404)
    }

    @Test("SQS samples reach a typed batch handler with every body")
    func sqsHandling() async throws {
        let bodies: [String] = try await invoke("sqs", try SampleEvents.sqs(.init(bodies: ["one", "two"])))
        #expect(bodies == ["one", "two"])
    }

    // MARK: The shapes of captured events

    /// Every object key path (`requestContext.identity.sourceIp`), through arrays without their indices.
    private static func keyPaths(_ value: Any, under prefix: String? = nil) -> Set<String> {
        switch value {
        case let object as [String: Any]:
            return object.reduce(into: Set<String>()) { paths, member in
                let path = prefix.map { "\($0).\(member.key)" } ?? member.key
                paths.insert(path)
                paths.formUnion(keyPaths(member.value, under: path))
            }
        case let array as [Any]:
            return array.reduce(into: Set<String>()) { $0.formUnion(keyPaths($1, under: prefix)) }
        default:
            return []
        }
    }

    private static func fixture(_ name: String) throws -> Data {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../MartletRuntimeTests/Fixtures")
        return try Data(contentsOf: folder.appendingPathComponent("\(name).json"))
    }

    /// Compares key paths with a captured fixture's; `missing` are the fixture's paths the sample is known to lack.
    private func expectShape(_ event: some Encodable, of name: String, missing: Set<String> = [], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let sample = Self.keyPaths(try JSONSerialization.jsonObject(with: Data(try SampleEvents.json(event).utf8)))
        let captured = Self.keyPaths(try JSONSerialization.jsonObject(with: try Self.fixture(name)))
        #expect(sample.subtracting(captured) == [], "keys the capture \(name) lacks", sourceLocation: sourceLocation)
        #expect(captured.subtracting(sample) == missing, "keys of the capture \(name) missing", sourceLocation: sourceLocation)
    }

    @Test("WebSocket samples have the keys of captured events")
    func webSocketShapes() throws {
        // A $connect has a query only when the client's URL had one.
        let query: Set = [
            "queryStringParameters", "queryStringParameters.token", "queryStringParameters.client",
            "multiValueQueryStringParameters", "multiValueQueryStringParameters.token", "multiValueQueryStringParameters.client",
        ]
        try expectShape(SampleEvents.webSocketConnect(.init()), of: "websocket-connect", missing: query)
        try expectShape(SampleEvents.webSocketConnect(.init(query: [NameValue("token", "t1"), NameValue("client", "web")])), of: "websocket-connect")
        try expectShape(SampleEvents.webSocketMessage(.init()), of: "websocket-message")
        try expectShape(SampleEvents.webSocketDisconnect(.init()), of: "websocket-disconnect")
    }

    @Test("HTTP samples have the keys of captured events")
    func httpShapes() throws {
        // A JWT authorizer's claims appear only when the route has one: no option makes them.
        let claims = ["auth_time", "client_id", "exp", "iat", "iss", "jti", "scope", "sub", "token_use", "username", "version"]
        let authorizer = Set((["", ".jwt", ".jwt.scopes", ".jwt.claims"] + claims.map { ".jwt.claims.\($0)" }).map { "requestContext.authorizer\($0)" })
        // Without options: no query, cookies or authorization header.
        let unasked: Set = ["cookies", "queryStringParameters", "queryStringParameters.priority", "queryStringParameters.tag", "headers.authorization"]
        try expectShape(try SampleEvents.http(.init()), of: "http-api-post-jobs", missing: authorizer.union(unasked))

        let asked = SampleEvents.HTTPOptions(
            query: [NameValue("priority", "high"), NameValue("tag", "gpu"), NameValue("tag", "batch")],
            headers: [NameValue("authorization", "Bearer token")], cookies: [NameValue("session", "s1"), NameValue("theme", "dark")]
        )
        try expectShape(try SampleEvents.http(asked), of: "http-api-post-jobs", missing: authorizer)

        // Stage variables belong to a named stage's configuration; samples use `$default`.
        let upload = SampleEvents.HTTPOptions(
            path: "/uploads/u-42", routeKey: "POST /uploads/{uploadId}", headers: [NameValue("accept-encoding", "gzip, deflate")],
            body: "PNG", isBase64Encoded: true
        )
        try expectShape(try SampleEvents.http(upload), of: "http-api-binary-upload", missing: ["stageVariables", "stageVariables.uploadBucket", "stageVariables.logLevel"])
    }

    @Test("SQS samples have the keys of captured events")
    func sqsShapes() throws {
        try expectShape(try SampleEvents.sqs(.init()), of: "sam-sqs-receive-message")
        // The capture also has an X-Ray trace header (only for traced senders) and a binary attribute (options make string ones).
        let untraced: Set = ["Records.attributes.AWSTraceHeader"]
        let binary = Set(["", ".binaryValue", ".stringListValues", ".binaryListValues", ".dataType"].map { "Records.messageAttributes.context\($0)" })
        let options = SampleEvents.SQSOptions(bodies: ["a", "b"], attributes: [NameValue("jobType", "render")])
        try expectShape(try SampleEvents.sqs(options), of: "sqs-event-with-attributes", missing: untraced.union(binary))
    }
}
