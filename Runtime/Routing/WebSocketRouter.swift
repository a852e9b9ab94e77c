/// Dispatches API Gateway WebSocket events by `requestContext.routeKey` through a table built once.
///
/// ```swift
/// let router = WebSocketRouter()
///     .on("$connect") { event, context in WebSocketResponse(statusCode: 200) }
///     .on("submit") { event, context in try await jobs.submit(event, context) }
/// ```
/// Unmatched keys go to `$default` when it is registered, else get a 404 response naming the key.
public struct WebSocketRouter: EventHandler {
    /// A route's handler.
    public typealias Route = @Sendable (WebSocketRequest, InvocationContext) async throws -> WebSocketResponse

    private var routes: [String: Route] = [:]

    public init() {}

    /// Adds (or replaces) the handler for `routeKey`.
    public func on(_ routeKey: String, _ route: @escaping Route) -> WebSocketRouter {
        var copy = self
        copy.routes[routeKey] = route
        return copy
    }

    /// The route keys this router serves.
    public var routeKeys: [String] { routes.keys.sorted() }

    public func handle(_ event: WebSocketRequest, context: InvocationContext) async throws -> WebSocketResponse {
        let key = event.requestContext.routeKey
        if let route = routes[key] ?? routes["$default"] {
            return try await route(event, context)
        }
        context.logger.warning("No WebSocket route", metadata: ["route.key": .string(key)])
        return WebSocketResponse(
            statusCode: 404,
            body: "{\"message\":\(JSONString.quoted("No route for '\(key)'. Known routes: \(routeKeys.joined(separator: ", "))"))}"
        )
    }
}
