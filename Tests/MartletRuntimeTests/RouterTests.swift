import Foundation
import MartletRuntime
import Testing

@Suite("Route dispatch")
struct RouterTests {
    private func webSocketEvent(_ routeKey: String) -> WebSocketRequest {
        WebSocketRequest(requestContext: .init(
            routeKey: routeKey, eventType: routeKey == "$connect" ? .connect : .message, requestTime: "15/Jan/2025:12:00:00 +0000",
            stage: "prod", connectedAt: 0, requestTimeEpoch: 0, identity: .init(sourceIp: "203.0.113.9"), requestId: "r",
            domainName: "d", connectionId: "c=", apiId: "a"
        ))
    }

    private func httpEvent(_ routeKey: String) -> HTTPRequest {
        let parts = routeKey.split(separator: " ")
        return HTTPRequest(routeKey: routeKey, rawPath: String(parts.last ?? "/"), requestContext: .init(
            accountId: "123456789012", apiId: "a", domainName: "d", domainPrefix: "d",
            http: .init(method: String(parts.first ?? "GET"), path: String(parts.last ?? "/"), sourceIp: "203.0.113.9", userAgent: "t"),
            requestId: "r", routeKey: routeKey, stage: "$default", time: "15/Jan/2025:12:00:00 +0000", timeEpoch: 0
        ))
    }

    @Test("WebSocket events go to the route of their routeKey")
    func webSocketRoutes() async throws {
        let router = WebSocketRouter()
            .on("$connect") { _, _ in WebSocketResponse(statusCode: 200, body: "connect") }
            .on("submit") { _, _ in WebSocketResponse(statusCode: 200, body: "submit") }
        #expect(try await router.handle(webSocketEvent("$connect"), context: .forTesting()).body == "connect")
        #expect(try await router.handle(webSocketEvent("submit"), context: .forTesting()).body == "submit")
        let unknown = try await router.handle(webSocketEvent("dance"), context: .forTesting())
        #expect(unknown.statusCode == 404)
        #expect(unknown.body?.contains("No route for 'dance'. Known routes: $connect, submit") == true)
    }

    @Test("Unmatched WebSocket keys fall back to $default when registered")
    func webSocketDefault() async throws {
        let router = WebSocketRouter().on("$default") { event, _ in WebSocketResponse(body: "default:\(event.requestContext.routeKey)") }
        #expect(try await router.handle(webSocketEvent("anything"), context: .forTesting()).body == "default:anything")
    }

    @Test("HTTP events go by method and path template, ANY matches every method, else 404 Not Found")
    func httpRoutes() async throws {
        let router = HTTPRouter()
            .on("POST /jobs") { _, _ in HTTPResponse(statusCode: 202) }
            .on("GET /jobs/{id}") { _, _ in HTTPResponse(statusCode: 200) }
            .on("ANY /health") { _, _ in HTTPResponse(statusCode: 204) }
        #expect(try await router.handle(httpEvent("POST /jobs"), context: .forTesting()).statusCode == 202)
        #expect(try await router.handle(httpEvent("GET /jobs/{id}"), context: .forTesting()).statusCode == 200)
        #expect(try await router.handle(httpEvent("DELETE /health"), context: .forTesting()).statusCode == 204)
        let missing = try await router.handle(httpEvent("DELETE /jobs"), context: .forTesting())
        #expect(missing.statusCode == 404)
        #expect(missing.body == #"{"message":"Not Found"}"#)
    }

    @Test("The registry names its handlers and finds them by exact name")
    func registry() {
        var registry = HandlerRegistry()
        registry.register("b") { ClosureByteHandler { event, _ in event } }
        registry.register("a") { HTTPRouter() }
        #expect(registry.names == ["a", "b"])
        #expect(registry.factory(for: "a") != nil)
        #expect(registry.factory(for: "bootstrap") == nil)
    }
}
