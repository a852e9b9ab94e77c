/// Dispatches HTTP API (payload 2.0) events by `routeKey` (`"POST /jobs"`) through a table built once.
///
/// ```swift
/// let router = HTTPRouter()
///     .on("POST /jobs") { request, context in try await jobs.create(request, context) }
///     .on("GET /jobs/{id}") { request, context in try await jobs.status(request, context) }
/// ```
/// Unmatched keys go to `$default` when registered, else get API Gateway's `404 {"message":"Not Found"}`.
public struct HTTPRouter: EventHandler {
    /// A route's handler.
    public typealias Route = @Sendable (HTTPRequest, InvocationContext) async throws -> HTTPResponse

    private var routes: [String: Route] = [:]

    public init() {}

    /// Adds (or replaces) the handler for `routeKey`, written as `"METHOD /path/{param}"` or `"$default"`.
    public func on(_ routeKey: String, _ route: @escaping Route) -> HTTPRouter {
        var copy = self
        copy.routes[routeKey] = route
        return copy
    }

    /// The route keys this router serves.
    public var routeKeys: [String] { routes.keys.sorted() }

    public func handle(_ event: HTTPRequest, context: InvocationContext) async throws -> HTTPResponse {
        let key = event.routeKey
        // `ANY /path` serves every method of that path.
        let anyKey = key.split(separator: " ", maxSplits: 1).last.map { "ANY \($0)" }
        if let route = routes[key] ?? anyKey.flatMap({ routes[$0] }) ?? routes["$default"] {
            return try await route(event, context)
        }
        context.logger.warning("No HTTP route", metadata: ["route.key": .string(key)])
        return .message(404, "Not Found")
    }
}
