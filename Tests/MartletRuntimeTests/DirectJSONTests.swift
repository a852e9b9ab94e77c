import Foundation
import MartletLocal
import MartletRuntime
import MartletTestSupport
import Testing

/// Events read and outputs written without JSONDecoder/JSONEncoder agree with Codable's reading and writing.
@Suite("Direct JSON events and outputs")
struct DirectJSONTests {
    private static func fixture(_ name: String) throws -> Data {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        return try Data(contentsOf: url)
    }

    private static func direct(_ json: Data) -> WebSocketRequest? {
        Array(json).withUnsafeBytes { WebSocketRequest(jsonBytes: $0) }
    }

    @Test("WebSocket events read directly equal JSONDecoder's reading", arguments: ["websocket-connect", "websocket-message", "websocket-disconnect"])
    func fixtures(name: String) throws {
        let json = try Self.fixture(name)
        let read = try #require(Self.direct(json))
        #expect(read == (try JSONDecoder().decode(WebSocketRequest.self, from: json)))
    }

    @Test("The events the local gateway sends read directly, with an authorizer of every JSON type")
    func gatewayEvents() throws {
        var connect = SampleEvents.webSocketConnect(.init())
        connect.requestContext.authorizer = .object([
            "principalId": .string("user-1"), "scopes": .array([.string("jobs"), .null, .bool(true)]), "expires": .number(1.5e9),
            "nested": .object(["quote": .string("a \"b\" \\ c\n é")]),
        ])
        for event in [connect, SampleEvents.webSocketMessage(.init()), SampleEvents.webSocketDisconnect(.init())] {
            let json = try JSONEncoder().encode(event)
            #expect(Self.direct(json) == event)
            // Written directly (as the gateway sends it): the same JSON, and it reads back.
            #expect(try jsonEqual(Data(event.jsonBytes), json), "\(String(decoding: event.jsonBytes, as: UTF8.self))")
            #expect(Self.direct(Data(event.jsonBytes)) == event)
        }
    }

    /// What the direct reader does not expect goes to JSONDecoder, which reports it.
    @Test("Unexpected events are left to JSONDecoder", arguments: [
        #"{"requestContext": {"routeKey": "$default"}, "isBase64Encoded": false}"#,  // required members missing
        #"{"isBase64Encoded": false}"#, #"[]"#, #"{"requestContext": 5, "isBase64Encoded": false}"#, "",
    ])
    func unexpected(json: String) throws {
        #expect(Self.direct(Data(json.utf8)) == nil)
    }

    @Test("Members it does not know, nulls and whitespace are read as JSONDecoder reads them")
    func unknownMembers() throws {
        let event = try JSONEncoder().encode(SampleEvents.webSocketMessage(.init(body: "{\"action\":\"submit\"}")))
        var object = try #require(try JSONSerialization.jsonObject(with: event) as? [String: Any])
        object["extra"] = ["nested": [1, 2.5, true, NSNull()], "s": "x"]
        object["headers"] = NSNull()
        var context = try #require(object["requestContext"] as? [String: Any])
        context["messageId"] = NSNull()
        context["unknownField"] = [1, [2]]
        object["requestContext"] = context
        let json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted])
        #expect(Self.direct(json) == (try JSONDecoder().decode(WebSocketRequest.self, from: json)))
    }

    @Test("WebSocket responses written directly read back as JSONEncoder's output does")
    func responses() throws {
        let responses = [
            WebSocketResponse(statusCode: 200, body: #"{"type":"accepted","url":"http://x/y?a=b"}"#),
            WebSocketResponse(statusCode: 401),
            WebSocketResponse(statusCode: 200, headers: ["Content-Type": "text/plain", "X-A": "é\t"], body: "line\nnext", isBase64Encoded: false),
        ]
        for var response in responses {
            response.multiValueHeaders = response.headers.map { $0.mapValues { [$0, "second"] } }
            let direct = Data(response.jsonBytes)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            #expect(try jsonEqual(direct, encoder.encode(response)), "\(String(decoding: direct, as: UTF8.self))")
            #expect(try JSONDecoder().decode(WebSocketResponse.self, from: direct) == response)
        }
    }
}
