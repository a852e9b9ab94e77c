import Foundation
import MartletRuntime
import MartletTestSupport
import Testing

@Suite("Event and response types")
struct EventTests {
    private static func fixture(_ name: String) throws -> Data {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        return try Data(contentsOf: url)
    }

    /// Decodes a fixture, encodes it again, and checks nothing was lost or changed.
    private static func roundTrip<T: Codable>(_ type: T.Type, _ name: String) throws -> T {
        let original = try fixture(name)
        let decoded = try JSONDecoder().decode(T.self, from: original)
        let encoded = try JSONEncoder().encode(decoded)
        #expect(try jsonEqual(original, encoded), "\(name) changed in a round trip: \(String(decoding: encoded, as: UTF8.self))")
        return decoded
    }

    @Test("WebSocket $connect decodes with headers, query and context, and round-trips")
    func websocketConnect() throws {
        let event = try Self.roundTrip(WebSocketRequest.self, "websocket-connect")
        #expect(event.requestContext.eventType == .connect)
        #expect(event.requestContext.routeKey == "$connect")
        #expect(event.requestContext.connectionId.hasSuffix("="))
        #expect(event.header("sec-websocket-version") == "13")
        #expect(event.body == nil)
    }

    @Test("WebSocket message decodes with its body and message id, and round-trips")
    func websocketMessage() throws {
        let event = try Self.roundTrip(WebSocketRequest.self, "websocket-message")
        #expect(event.requestContext.eventType == .message)
        #expect(event.requestContext.routeKey == "submit")
        #expect(event.requestContext.messageId == "Zx1BbPc2ntjMCFIA=")
        #expect(event.requestContext.identity.userAgent != nil)
        #expect(event.body?.contains(#""action":"submit""#) == true)
        #expect(event.headers == nil)
    }

    @Test("WebSocket $disconnect decodes with its close code, and round-trips")
    func websocketDisconnect() throws {
        let event = try Self.roundTrip(WebSocketRequest.self, "websocket-disconnect")
        #expect(event.requestContext.eventType == .disconnect)
        #expect(event.requestContext.disconnectStatusCode == 1001)
        #expect(event.requestContext.disconnectReason == "")
    }

    @Test("HTTP API 2.0 events from sam local generate-event and the docs decode and round-trip")
    func httpRequests() throws {
        let sam = try Self.roundTrip(HTTPRequest.self, "sam-http-api-proxy")
        #expect(sam.isBase64Encoded)
        #expect(sam.bodyBytes.map { String(decoding: $0, as: UTF8.self) } == #"{"test":"body"}"#)
        #expect(sam.requestContext.authentication != nil)

        let jobs = try Self.roundTrip(HTTPRequest.self, "http-api-post-jobs")
        #expect(jobs.routeKey == "POST /jobs")
        #expect(jobs.requestContext.http.method == "POST")
        #expect(jobs.cookies?.isEmpty == false)
        #expect(jobs.requestContext.authorizer?["jwt"]?["claims"] != nil)

        let upload = try Self.roundTrip(HTTPRequest.self, "http-api-binary-upload")
        #expect(upload.isBase64Encoded)
        #expect(upload.bodyBytes?.prefix(4) == [0x89, 0x50, 0x4E, 0x47])  // PNG signature
        #expect(upload.pathParameters?["uploadId"] == "u-42")
    }

    @Test("HTTP API 2.0 responses round-trip, and binary bodies are base64-encoded")
    func httpResponses() throws {
        let response = try Self.roundTrip(HTTPResponse.self, "http-api-response")
        #expect(response.statusCode == 201)
        let binary = HTTPResponse(statusCode: 200, binaryBody: [0, 1, 2, 255])
        #expect(binary.body == "AAEC/w==")
        #expect(binary.isBase64Encoded == true)
        #expect(HTTPResponse.message(404, "Not Found").body == #"{"message":"Not Found"}"#)
    }

    @Test("SQS events decode with attributes and round-trip; batch responses encode as Lambda expects")
    func sqs() throws {
        let sam = try Self.roundTrip(SQSEvent.self, "sam-sqs-receive-message")
        #expect(sam.records.first?.body == "Hello from SQS!")
        let event = try Self.roundTrip(SQSEvent.self, "sqs-event-with-attributes")
        #expect(event.records.count == 2)
        #expect(event.records[0].attributes["ApproximateReceiveCount"] != nil)
        #expect(event.records[0].messageAttributes.values.contains { $0.dataType == "Binary" })
        let response = try Self.roundTrip(SQSBatchResponse.self, "sqs-batch-response")
        #expect(response.batchItemFailures.first?.itemIdentifier == event.records[1].messageId)
        let built = try JSONEncoder().encode(SQSBatchResponse(failedMessageIDs: ["a"]))
        #expect(String(decoding: built, as: UTF8.self) == #"{"batchItemFailures":[{"itemIdentifier":"a"}]}"#)
    }

    @Test("Events that miss required fields are rejected, not half-decoded")
    func missingFields() throws {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(WebSocketRequest.self, from: Data(#"{"isBase64Encoded":false}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(SQSEvent.self, from: Data(#"{"records":[]}"#.utf8))
        }
    }
}
