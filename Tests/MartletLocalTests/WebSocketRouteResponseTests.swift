import Foundation
import Logging
import MartletClient
import MartletTestSupport
import NIOCore
import NIOWebSocket
import Testing

@testable import MartletLocal

/// Two-way WebSocket routes: a route with a `$default` route response (and a route response
/// selection expression) sends its integration's `body` back to the client; other routes are one-way.
@Suite("WebSocket API: route responses")
struct WebSocketRouteResponseTests {
    static let template = """
        AWSTemplateFormatVersion: "2010-09-09"
        Transform: AWS::Serverless-2016-10-31
        Globals:
          Function:
            Runtime: provided.al2023
            Timeout: 3
        Resources:
          Echo:
            Type: AWS::Serverless::Function
            Properties:
              Handler: echo
          Api:
            Type: AWS::ApiGatewayV2::Api
            Properties:
              ProtocolType: WEBSOCKET
              RouteSelectionExpression: $request.body.action
          EchoIntegration:
            Type: AWS::ApiGatewayV2::Integration
            Properties:
              ApiId: !Ref Api
              IntegrationType: AWS_PROXY
              IntegrationUri: !Sub "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations"
          DefaultRoute:
            Type: AWS::ApiGatewayV2::Route
            Properties:
              ApiId: !Ref Api
              RouteKey: $default
              RouteResponseSelectionExpression: $default
              Target: !Sub "integrations/${EchoIntegration}"
          DefaultRouteResponse:
            Type: AWS::ApiGatewayV2::RouteResponse
            Properties:
              ApiId: !Ref Api
              RouteId: !Ref DefaultRoute
              RouteResponseKey: $default
          QuietRoute:
            Type: AWS::ApiGatewayV2::Route
            Properties:
              ApiId: !Ref Api
              RouteKey: quiet
              Target: !Sub "integrations/${EchoIntegration}"
          HalfRoute:
            Type: AWS::ApiGatewayV2::Route
            Properties:
              ApiId: !Ref Api
              RouteKey: half
              Target: !Sub "integrations/${EchoIntegration}"
          HalfRouteResponse:
            Type: AWS::ApiGatewayV2::RouteResponse
            Properties:
              ApiId: !Ref Api
              RouteId: !Ref HalfRoute
              RouteResponseKey: $default
        """

    @Test("The two-way route answers with the function's body; one-way routes (and a route response without a selection expression) send nothing")
    func twoWayAndOneWay() async throws {
        try await withTemplateStack(Self.template) { addresses, stack in
            #expect(stack.warnings.withLock { $0 }.contains { $0.contains("HalfRoute") && $0.contains("one-way") })
            let connection = try await WebSocketClient.connect(to: addresses.webSocket)
            var events = connection.events.makeAsyncIterator()
            // No answer within 10 s ends the connection, and the expectation below fails.
            let watchdog = Task {
                try await Task.sleep(for: .seconds(10))
                connection.abort()
            }
            defer { watchdog.cancel() }
            // One-way first: had either answered, its echo would arrive before the two-way one's.
            try await connection.send(#"{"action":"quiet","n":1}"#)
            try await connection.send(#"{"action":"half","n":2}"#)
            try await connection.send(#"{"action":"other","n":3}"#)
            #expect(await events.next() == .text(#"{"action":"other","n":3}"#))
            await connection.close()
        }
    }

    @Test("Route keys read directly agree with JSONSerialization's reading", arguments: [
        #"{"action":"submit","n":1}"#, #" { "n" : {"action": "x"}, "action" : "status" } "#, #"{"action":"a","action":"b"}"#,
        #"{"action":5}"#, #"{"action":true}"#, #"{"action":null}"#, #"{"other":"x"}"#, "not json", #"["action"]"#, #"{"action":"é "q""}"#,
        #"{"action":{"nested":"x"}}"#, #"{"action":"submit"} trailing"#,
    ])
    func routeKeys(message: String) {
        let direct = Array(message.utf8).withUnsafeBytes { WebSocketGateway.stringMember(at: ["action"], in: $0) }
        let object = try? JSONSerialization.jsonObject(with: Data(message.utf8)) as? [String: Any]
        // Where one reads a string the other reads the same one (otherwise the direct reader gives way).
        if let direct { #expect(object?["action"] as? String == direct) }
        if let text = object?["action"] as? String { #expect(direct == text) }
    }

    @Test("What a two-way route sends of a Lambda proxy answer")
    func answerMapping() {
        func frame(_ payload: String) -> WebSocketFrame? { WebSocketGateway.routeResponse(fromFunction: ByteBuffer(string: payload)) }
        #expect(frame(#"{"statusCode":200,"body":"{\"type\":\"accepted\"}"}"#).map { String(buffer: $0.data) } == #"{"type":"accepted"}"#)
        #expect(frame(#"{"statusCode":400,"body":"no"}"#).map { String(buffer: $0.data) } == "no")
        #expect(frame(#"{"statusCode":200}"#) == nil)
        #expect(frame("") == nil)
        #expect(frame(#""just text""#).map { String(buffer: $0.data) } == #""just text""#)
        let binary = frame(#"{"body":"AAH/","isBase64Encoded":true}"#)
        #expect(binary?.opcode == .binary && binary.map { Array($0.data.readableBytesView) } == [0, 1, 255])
        // Answers the direct reader leaves to JSONSerialization come out the same.
        #expect(frame(#"{"statusCode":200,"body":5}"#) == nil)
        #expect(frame(#"{"body":"AAH/","isBase64Encoded":"true"}"#).map { String(buffer: $0.data) } == "AAH/")
        #expect(frame(#" { "headers" : {"a":["b"]}, "body" : "x\ny" , "extra" : [1, {"n": null}] } "#).map { String(buffer: $0.data) } == "x\ny")
        #expect(frame(#"[1,2]"#).map { String(buffer: $0.data) } == "[1,2]")
    }
}
