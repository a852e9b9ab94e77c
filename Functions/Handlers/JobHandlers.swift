import Logging
import MartletAWS
import MartletJobs
import MartletRuntime

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The application's routes. Each function of the template names one of these as its `Handler`;
// all of them work through one `JobService` built when the function starts.

/// WebSocket `$connect`: accepts a client with a valid key (`?key=` or the `x-api-key` header) and
/// records its connection; refuses others with 401 (no key) or 403 (a wrong key) before the upgrade.
public struct ConnectHandler: EventHandler {
    let service: JobService

    public init(service: JobService) { self.service = service }

    public func handle(_ event: WebSocketRequest, context: InvocationContext) async throws -> WebSocketResponse {
        let key = event.queryStringParameters?["key"] ?? event.header("x-api-key")
        do {
            let owner = try service.authenticate(key: key)
            try await service.connections.add(connectionId: event.requestContext.connectionId, owner: owner, now: currentMilliseconds())
            context.logger.info("Client connected", metadata: ["connection.id": "\(event.requestContext.connectionId)"])
            return WebSocketResponse(statusCode: 200)
        } catch let error as JobError {
            context.logger.info("Connection refused", metadata: ["reason": "\(error.code)"])
            return WebSocketResponse(statusCode: error.status, body: ClientMessage.error(error).json)
        }
    }
}

/// WebSocket `$disconnect`: forgets the connection (its jobs keep running; the client can reconnect
/// and ask for their status).
public struct DisconnectHandler: EventHandler {
    let service: JobService

    public init(service: JobService) { self.service = service }

    public func handle(_ event: WebSocketRequest, context: InvocationContext) async throws -> WebSocketResponse {
        try await service.connections.remove(connectionId: event.requestContext.connectionId)
        return WebSocketResponse(statusCode: 200)
    }
}

/// WebSocket messages, routed by `action`: `submit`, `status`, `cancel`; anything else (and a body
/// that is not JSON) gets an error message. Each answer is the route's response: the template gives
/// these routes a `$default` route response, so API Gateway sends it back on the connection.
public struct MessageHandler: EventHandler {
    let service: JobService
    let router: WebSocketRouter

    /// The route keys this handler serves (the template routes them here).
    public static let routeKeys = ["$default", "cancel", "status", "submit"]

    public init(service: JobService) {
        self.service = service
        router = WebSocketRouter()
            .on("submit") { event, context in await Self.answer(event, context, service) { body, owner in
                try await service.submit(
                    try JobRequest(json: body, owner: owner), owner: owner, connectionId: event.requestContext.connectionId, traceHeader: context.traceID
                )
            } }
            .on("status") { event, context in await Self.answer(event, context, service) { body, owner in
                let job = try await service.status(try Self.jobId(body), owner: owner)
                if job.state == .succeeded { return try await service.resultURL(job.jobId, owner: owner) }
                return ClientMessage(type: .status, jobId: job.jobId, job: job.view)
            } }
            .on("cancel") { event, context in await Self.answer(event, context, service) { body, owner in
                let job = try await service.cancel(try Self.jobId(body), owner: owner)
                return ClientMessage(type: .status, jobId: job.jobId, job: job.view)
            } }
            .on("$default") { event, context in await Self.answer(event, context, service) { body, _ in
                if case .string(let action)? = body["action"] {
                    throw JobError.invalidRequest("Unknown action \"\(action)\"; use submit, status or cancel")
                }
                throw JobError.invalidRequest("Messages are JSON objects with an \"action\": submit, status or cancel")
            } }
    }

    public func handle(_ event: WebSocketRequest, context: InvocationContext) async throws -> WebSocketResponse {
        try await router.handle(event, context: context)
    }

    /// Runs one action for the connection's client; its answer (or the refusal) is the route response.
    static func answer(
        _ event: WebSocketRequest, _ context: InvocationContext, _ service: JobService,
        _ action: ([String: JSONValue], String) async throws -> ClientMessage
    ) async -> WebSocketResponse {
        let connectionId = event.requestContext.connectionId
        var message: ClientMessage
        do {
            guard let owner = try await service.connections.owner(of: connectionId) else { throw JobError.forbidden }
            message = try await AWSTrace.$header.withValue(context.traceID) { try await action(try body(of: event), owner) }
        } catch let error as JobError {
            message = .error(error)
            // A refusal about a job names it, so a client with several jobs knows which one.
            if case .string(let jobId)? = (try? body(of: event))?["jobId"] { message.jobId = jobId }
        } catch {
            context.logger.error("Message failed", metadata: ["error": "\(error)"])
            message = ClientMessage(type: .error, message: "Internal error (request \(context.requestID))", code: "InternalError")
        }
        return WebSocketResponse(statusCode: 200, body: message.json)
    }

    static func body(of event: WebSocketRequest) throws(JobError) -> [String: JSONValue] {
        guard let text = event.body, let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(text.utf8)) else {
            throw JobError.invalidRequest("Messages are JSON objects with an \"action\": submit, status or cancel")
        }
        return object
    }

    static func jobId(_ body: [String: JSONValue]) throws(JobError) -> String {
        guard case .string(let id)? = body["jobId"], !id.isEmpty else { throw JobError.invalidRequest("\"jobId\" is required") }
        return id
    }
}

/// The HTTP API: `POST /jobs`, `GET /jobs/{id}`, `POST /uploads`, `GET /jobs/{id}/result`, each
/// for the client whose key is in `x-api-key` (or `Authorization: Bearer …`).
public struct JobsHTTPHandler: EventHandler {
    let service: JobService
    let router: HTTPRouter

    /// The routes this handler serves.
    public static var routeKeys: [String] { ApplicationContract.httpHandlers.values.sorted() }

    public init(service: JobService) {
        self.service = service
        router = HTTPRouter()
            .on("POST /jobs") { request, context in await Self.answer(request, context, service) { owner in
                let message = try await service.submit(
                    try JobRequest(json: try Self.body(of: request), owner: owner), owner: owner, traceHeader: context.traceID
                )
                return (message.duplicate == true ? 200 : 202, message)
            } }
            .on("GET /jobs/{id}") { request, context in await Self.answer(request, context, service) { owner in
                let job = try await service.status(request.pathParameters?["id"] ?? "", owner: owner)
                return (200, job.view)
            } }
            .on("GET /jobs/{id}/result") { request, context in await Self.answer(request, context, service) { owner in
                (200, try await service.resultURL(request.pathParameters?["id"] ?? "", owner: owner))
            } }
            .on("POST /uploads") { request, context in await Self.answer(request, context, service) { owner in
                let body = (try? Self.body(of: request)) ?? [:]
                var contentType: String?
                if case .string(let value)? = body["contentType"] { contentType = value }
                var fileName: String?
                if case .string(let value)? = body["fileName"] { fileName = value }
                return (200, try await service.createUpload(owner: owner, contentType: contentType, fileName: fileName))
            } }
    }

    public func handle(_ event: HTTPRequest, context: InvocationContext) async throws -> HTTPResponse {
        try await router.handle(event, context: context)
    }

    static func answer(
        _ request: HTTPRequest, _ context: InvocationContext, _ service: JobService, _ action: (String) async throws -> (Int, any Encodable)
    ) async -> HTTPResponse {
        do {
            var key = request.header("x-api-key")
            if key == nil, let authorization = request.header("authorization"), authorization.lowercased().hasPrefix("bearer ") {
                key = String(authorization.dropFirst(7))
            }
            let owner = try service.authenticate(key: key)
            let (status, body) = try await AWSTrace.$header.withValue(context.traceID) { try await action(owner) }
            return json(status, body)
        } catch let error as JobError {
            return json(error.status, ["message": error.message, "code": error.code])
        } catch {
            context.logger.error("Request failed", metadata: ["error": "\(error)"])
            return json(500, ["message": "Internal error (request \(context.requestID))", "code": "InternalError"])
        }
    }

    static func json(_ status: Int, _ body: any Encodable) -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = (try? encoder.encode(body)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return HTTPResponse(statusCode: status, headers: ["content-type": "application/json"], body: text)
    }

    static func body(of request: HTTPRequest) throws(JobError) -> [String: JSONValue] {
        guard let bytes = request.bodyBytes, let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(bytes)) else {
            throw JobError.invalidRequest("The body must be a JSON object")
        }
        return object
    }
}
