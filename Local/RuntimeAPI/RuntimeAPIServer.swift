import Logging
import MartletRuntime
import NIOCore
import NIOPosix
import NIOHTTP1

/// Lambda's limits that the local APIs enforce.
public enum LambdaLimits {
    /// A buffered response larger than this is refused with 413 (6 MiB + 100 bytes, as Lambda's Runtime API).
    public static let maxResponseSize = 6 * 1024 * 1024 + 100
    /// A streamed response larger than this is cut off (200 MiB, Lambda's limit since July 2025).
    public static let maxStreamedResponseSize = 200 * 1024 * 1024
    /// A synchronous invoke payload larger than this is refused (6 MiB).
    public static let maxRequestSize = 6 * 1024 * 1024
    /// An asynchronous (`Event`) invoke payload larger than this is refused (1 MiB).
    public static let maxAsyncRequestSize = 1024 * 1024
    /// The default function timeout.
    public static let defaultTimeout = Duration.seconds(3)
    /// The longest function timeout.
    public static let maxTimeout = Duration.seconds(900)
    /// How long init may take before Lambda gives up on it.
    public static let initTimeout = Duration.seconds(10)
}

/// The Lambda Runtime API (2018-06-01) for one ``RuntimeEnvironment``, and optionally Lambda's Invoke API.
///
/// ```swift
/// let environment = RuntimeEnvironment(functionName: "echo")
/// let server = RuntimeAPIServer(environment: environment, logger: logger)
/// try await server.run { address in print("AWS_LAMBDA_RUNTIME_API=\(address)") }
/// ```
public struct RuntimeAPIServer: Sendable {
    public let environment: RuntimeEnvironment
    private let invokeAPI: InvokeAPIEndpoint?
    private let logger: Logger
    private let host: String
    private let port: Int
    private let eventLoopGroup: any EventLoopGroup

    /// - Parameter invoker: when given, the server also answers `POST /2015-03-31/functions/{name}/invocations`.
    public init(
        environment: RuntimeEnvironment, invoker: (any FunctionInvoker)? = nil, host: String = "127.0.0.1", port: Int = 0,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) {
        self.eventLoopGroup = eventLoopGroup
        self.environment = environment
        self.invokeAPI = invoker.map { InvokeAPIEndpoint(invoker: $0, logger: logger) }
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// Serves until cancelled; `onListening` receives the `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    public func run(onListening: @Sendable (String) -> Void = { _ in }) async throws {
        let streamedResponses = HTTPServer.StreamingRoute(claims: Self.isStreamedResponse) { request, body in
            await self.receiveStreamedResponse(request, body: body)
        }
        let server = HTTPServer(
            host: host, port: port, maxBodySize: LambdaLimits.maxResponseSize, eventLoopGroup: eventLoopGroup, streaming: streamedResponses,
            logger: logger
        ) { request in
            await self.answer(request)
        }
        try await server.run { address in
            onListening("\(address.ipAddress ?? host):\(address.port ?? port)")
        }
    }

    /// Answers one HTTP request.
    public func answer(_ request: HTTPServerRequest) async -> HTTPServerResponse {
        let path = request.path
        if path.hasPrefix("/2018-06-01/runtime/") {
            return await runtimeAPI(request, path: path.dropFirst("/2018-06-01/runtime/".count))
        }
        if let invokeAPI, InvokeAPIEndpoint.serves(path) {
            return await invokeAPI.answer(request)
        }
        return .json(.notFound, FunctionError(errorType: "NotFound", errorMessage: "No such path: \(path)").json)
    }

    private func runtimeAPI(_ request: HTTPServerRequest, path: Substring) async -> HTTPServerResponse {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        switch (request.method, segments.count, segments.first) {
        case (.GET, 2, "invocation") where segments[1] == "next":
            return await next()
        case (.POST, 3, "invocation") where segments[2] == "response":
            let requestID = String(segments[1])
            if request.bodyTooLarge {
                let message = "Response payload size (\(request.bodyLength) bytes) exceeded maximum allowed payload size (\(LambdaLimits.maxResponseSize) bytes)."
                _ = try? environment.finish(requestID, with: .platformError(FunctionError(errorType: "Function.ResponseSizeTooLarge", errorMessage: message)))
                return .json(.payloadTooLarge, FunctionError(
                    errorType: "RequestEntityTooLarge",
                    errorMessage: "Exceeded maximum allowed payload size (\(LambdaLimits.maxResponseSize) bytes)."
                ).json)
            }
            if let mode = request.headers.first(name: RuntimeAPIHeader.responseMode), mode.lowercased() != "streaming" {
                return .json(.badRequest, FunctionError(errorType: "InvalidFunctionResponseMode", errorMessage: "Invalid function response mode").json)
            }
            return accepted { () throws(RuntimeAPIFailure) in
                try environment.respond(to: requestID, body: request.body, contentType: request.headers.first(name: "Content-Type"))
            }
        case (.POST, 3, "invocation") where segments[2] == "error":
            let requestID = String(segments[1])
            return accepted { () throws(RuntimeAPIFailure) in
                try environment.reportError(
                    for: requestID, body: errorBody(request), errorType: request.headers.first(name: RuntimeAPIHeader.functionErrorType)
                )
            }
        case (.POST, 2, "init") where segments[1] == "error":
            environment.reportInitError(body: errorBody(request), errorType: request.headers.first(name: RuntimeAPIHeader.functionErrorType))
            return .json(.accepted, "{\"status\":\"OK\"}")
        default:
            return .json(.notFound, FunctionError(errorType: "NotFound", errorMessage: "No such Runtime API path: \(request.method) \(request.path)").json)
        }
    }

    /// `POST /runtime/invocation/{id}/response` with `Lambda-Runtime-Function-Response-Mode: streaming`.
    static func isStreamedResponse(_ head: HTTPRequestHead) -> Bool {
        head.method == .POST && head.uri.hasPrefix("/2018-06-01/runtime/invocation/") && head.uri.hasSuffix("/response")
            && head.headers.first(name: RuntimeAPIHeader.responseMode)?.lowercased() == "streaming"
    }

    /// Hands each chunk of a streamed response to the invocation as it arrives; the error trailers
    /// (`Lambda-Runtime-Function-Error-Type`, `…-Error-Body` in base64) end it as a function error.
    func receiveStreamedResponse(_ request: HTTPServerRequest, body: HTTPRequestBodyStream) async -> HTTPServerResponse {
        let segments = request.path.split(separator: "/")
        guard segments.count == 5 else { return .json(.notFound, FunctionError(errorType: "NotFound", errorMessage: "No such path").json) }
        let requestID = String(segments[3])
        let response = StreamedResponse(contentType: request.headers.first(name: "Content-Type"))
        do {
            try environment.finish(requestID, with: .streamed(response))
        } catch {
            return failure(error)
        }
        var size = 0
        do {
            while let chunk = try await body.next() {
                size += chunk.readableBytes
                if size > LambdaLimits.maxStreamedResponseSize {
                    let error = FunctionError(
                        errorType: "Function.ResponseSizeTooLarge",
                        errorMessage: "Response payload size exceeded maximum allowed payload size (\(LambdaLimits.maxStreamedResponseSize) bytes)."
                    )
                    response.finish(StreamedResponseError(outcome: .platformError(error)))
                    return .json(.payloadTooLarge, error.json)
                }
                // Ended already (a timeout): the platform no longer listens.
                if response.isFinished { return .json(.gone, FunctionError(errorType: "InvocationEnded", errorMessage: "The invocation has ended").json) }
                response.yield(chunk)
            }
        } catch {
            response.finish(StreamedResponseError(outcome: .platformError(FunctionError(
                errorType: "Runtime.ExitError", errorMessage: "RequestId: \(requestID) Error: the runtime stopped streaming its response: \(error)"
            ))))
            return .json(.badRequest, FunctionError(errorType: "InvalidRequest", errorMessage: "The streamed response broke off").json)
        }
        if let errorType = body.trailers?.first(name: RuntimeAPIHeader.functionErrorType) {
            let errorBody = body.trailers?.first(name: RuntimeAPIHeader.functionErrorBody).flatMap { Base64.decode($0) }
                ?? Array(FunctionError(errorType: errorType, errorMessage: "Unknown application error occurred").json.utf8)
            response.finish(StreamedResponseError(outcome: .functionError(body: ByteBuffer(bytes: errorBody), errorType: errorType)))
        } else {
            response.finish()
        }
        return .json(.accepted, "{\"status\":\"OK\"}")
    }

    private func next() async -> HTTPServerResponse {
        do {
            guard let delivery = try await environment.next() else {
                return .json(.internalServerError, FunctionError(errorType: "Runtime.ShutDown", errorMessage: "The execution environment is shutting down").json)
            }
            var headers = delivery.metadata.headers
            headers.add(name: "Content-Type", value: delivery.contentType)
            return HTTPServerResponse(status: .ok, headers: headers, body: delivery.event)
        } catch {
            return failure(error)
        }
    }

    /// Without a body, Lambda builds the error from the error-type header.
    private func errorBody(_ request: HTTPServerRequest) -> ByteBuffer {
        if request.body.readableBytes > 0 { return request.body }
        let type = request.headers.first(name: RuntimeAPIHeader.functionErrorType) ?? "Runtime.Unknown"
        return ByteBuffer(string: FunctionError(errorType: type, errorMessage: "Unknown application error occurred").json)
    }

    private func accepted(_ body: () throws(RuntimeAPIFailure) -> Void) -> HTTPServerResponse {
        do {
            try body()
            return .json(.accepted, "{\"status\":\"OK\"}")
        } catch {
            return failure(error)
        }
    }

    private func failure(_ failure: RuntimeAPIFailure) -> HTTPServerResponse {
        .json(HTTPResponseStatus(statusCode: Int(failure.status)), failure.json)
    }
}
