import Foundation
import Logging
import MartletRuntime
import NIOCore
import NIOHTTP1

/// Runs invocations of named functions: the local process pool, or one function for `martlet invoke`.
public protocol FunctionInvoker: Sendable {
    /// Runs one invocation; throws ``InvokeError`` when the function cannot be invoked at all.
    func invoke(_ request: InvokeRequest) async throws(InvokeError) -> InvokeResult
}

/// One call of Lambda's Invoke API.
public struct InvokeRequest: Sendable {
    /// `RequestResponse` (wait for the result), `Event` (queue it), `DryRun` (check only).
    public enum InvocationType: String, Sendable {
        case requestResponse = "RequestResponse"
        case event = "Event"
        case dryRun = "DryRun"
    }

    public var functionName: String
    /// A version or alias (`name:alias` or `?Qualifier=`); `nil` means `$LATEST`.
    public var qualifier: String?
    public var payload: ByteBuffer
    public var invocationType: InvocationType
    /// `X-Amz-Log-Type: Tail` asks for the last 4 KB of logs.
    public var wantsLogTail: Bool
    /// The client context, base64-decoded.
    public var clientContext: String?
    public var traceID: String?
    public var tenantID: String?
    /// `InvokeWithResponseStream`: where a streamed response goes, chunk by chunk, as it arrives.
    public var streamTo: (@Sendable (ByteBuffer) async -> Void)?

    public init(
        functionName: String, qualifier: String? = nil, payload: ByteBuffer, invocationType: InvocationType = .requestResponse, wantsLogTail: Bool = false,
        clientContext: String? = nil, traceID: String? = nil, tenantID: String? = nil, streamTo: (@Sendable (ByteBuffer) async -> Void)? = nil
    ) {
        self.streamTo = streamTo
        self.functionName = functionName
        self.qualifier = qualifier
        self.payload = payload
        self.invocationType = invocationType
        self.wantsLogTail = wantsLogTail
        self.clientContext = clientContext
        self.traceID = traceID
        self.tenantID = tenantID
    }
}

/// The outcome of one invocation with what the caller's headers report.
public struct InvokeResult: Sendable {
    /// The invocation's request id, returned as `x-amzn-RequestId`.
    public var requestID: String
    public var outcome: InvocationOutcome
    public var executedVersion: String
    /// The tail of the invocation's logs, when asked for.
    public var logTail: String?

    public init(requestID: String, outcome: InvocationOutcome, executedVersion: String = "$LATEST", logTail: String? = nil) {
        self.requestID = requestID
        self.outcome = outcome
        self.executedVersion = executedVersion
        self.logTail = logTail
    }
}

/// A refusal of the Invoke API in its rest-json error format.
public struct InvokeError: Error, Sendable, Equatable {
    public let status: UInt
    public let code: String
    public let message: String

    public static func functionNotFound(_ arn: String) -> Self {
        Self(status: 404, code: "ResourceNotFoundException", message: "Function not found: \(arn)")
    }
    public static func tooManyRequests(_ message: String) -> Self {
        Self(status: 429, code: "TooManyRequestsException", message: message)
    }
    public static func service(_ message: String) -> Self {
        Self(status: 500, code: "ServiceException", message: message)
    }

    public init(status: UInt, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }
}

/// Lambda's Invoke API: `POST /2015-03-31/functions/{FunctionName}/invocations`, and
/// `InvokeWithResponseStream`: `POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations`.
public struct InvokeAPIEndpoint: Sendable {
    static let pathPrefix = "/2015-03-31/functions/"
    static let streamingPathPrefix = "/2021-11-15/functions/"

    /// Whether `path` is one of this API's.
    static func serves(_ path: Substring) -> Bool { path.hasPrefix(pathPrefix) || path.hasPrefix(streamingPathPrefix) }
    let invoker: any FunctionInvoker
    let logger: Logger

    public init(invoker: any FunctionInvoker, logger: Logger) {
        self.invoker = invoker
        self.logger = logger
    }

    /// Answers one Invoke API request.
    public func answer(_ request: HTTPServerRequest) async -> HTTPServerResponse {
        let streaming = request.path.hasPrefix(Self.streamingPathPrefix)
        let rest = request.path.dropFirst(streaming ? Self.streamingPathPrefix.count : Self.pathPrefix.count)
        let suffix = streaming ? "/response-streaming-invocations" : "/invocations"
        guard rest.hasSuffix(suffix), request.method == .POST else {
            return Self.error(.init(status: 404, code: "UnknownOperationException", message: "Unknown operation \(request.method) \(request.path)"))
        }
        var (name, qualifier) = Self.functionName(fromPathSegment: String(rest.dropLast(suffix.count)))
        if let query = request.query {
            for pair in query.split(separator: "&") where pair.hasPrefix("Qualifier=") {
                let value = String(pair.dropFirst("Qualifier=".count))
                qualifier = value.removingPercentEncoding ?? value
            }
        }
        guard let type = InvokeRequest.InvocationType(rawValue: request.headers.first(name: "X-Amz-Invocation-Type") ?? "RequestResponse") else {
            return Self.error(.init(status: 400, code: "InvalidParameterValueException", message: "Unsupported invocation type"))
        }
        let limit = type == .event ? LambdaLimits.maxAsyncRequestSize : LambdaLimits.maxRequestSize
        if request.bodyTooLarge || request.bodyLength > limit {
            return Self.error(.init(
                status: 413, code: "RequestTooLargeException",
                message: "Request must be smaller than \(limit) bytes for the InvokeFunction operation"
            ))
        }
        if let problem = JSONPayload.problem(in: request.body) {
            return Self.error(.init(status: 400, code: "InvalidRequestContentException", message: "Could not parse request body into json: \(problem)"))
        }
        var clientContext: String?
        if let encoded = request.headers.first(name: "X-Amz-Client-Context") {
            guard encoded.utf8.count <= 3583, let decoded = Base64.decode(encoded) else {
                return Self.error(.init(status: 400, code: "InvalidRequestContentException", message: "Client context must be valid base64 of at most 3583 bytes"))
            }
            clientContext = String(decoding: decoded, as: UTF8.self)
        }
        let invoke = InvokeRequest(
            functionName: name, qualifier: qualifier, payload: request.body, invocationType: type,
            wantsLogTail: request.headers.first(name: "X-Amz-Log-Type") == "Tail", clientContext: clientContext,
            traceID: request.headers.first(name: "X-Amzn-Trace-Id"), tenantID: request.headers.first(name: "X-Amz-Tenant-Id")
        )
        if streaming, type == .requestResponse { return await streamedResponse(invoke) }
        do {
            let result = try await invoker.invoke(invoke)
            switch type {
            case .dryRun: return HTTPServerResponse(status: .noContent, headers: ["x-amzn-RequestId": result.requestID])
            case .event: return HTTPServerResponse(status: .accepted, headers: ["x-amzn-RequestId": result.requestID])
            case .requestResponse: return Self.response(for: result)
            }
        } catch {
            return Self.error(error)
        }
    }

    /// `name`, `name:alias`, or a full or partial ARN: the bare function name and the qualifier, if any.
    static func functionName(fromPathSegment segment: String) -> (name: String, qualifier: String?) {
        let decoded = segment.removingPercentEncoding ?? segment
        let parts = decoded.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if decoded.hasPrefix("arn:"), parts.count >= 7 { return (parts[6], parts.count > 7 ? parts[7] : nil) }
        if parts.count >= 3, parts[1] == "function" { return (parts[2], parts.count > 3 ? parts[3] : nil) }  // 123456789012:function:name[:alias]
        return (parts[0], parts.count > 1 ? parts[1] : nil)
    }

    /// `InvokeWithResponseStream`: `PayloadChunk` events as the function writes, then `InvokeComplete`
    /// (with `ErrorCode` and `ErrorDetails` when it failed). A function that does not stream answers
    /// with its whole response as one chunk. A refusal before the invocation is an ordinary error.
    func streamedResponse(_ request: InvokeRequest) async -> HTTPServerResponse {
        let invoker = self.invoker
        let (events, invocation) = startStreamedInvocation { streamTo -> Result<InvokeResult, InvokeError> in
            var request = request
            request.streamTo = streamTo
            do {
                return .success(try await invoker.invoke(request))
            } catch let error as InvokeError {
                return .failure(error)
            } catch {
                return .failure(.service("\(error)"))
            }
        }
        var iterator = events.makeAsyncIterator()
        let first = await iterator.next()
        if case .done(.failure(let error))? = first { return Self.error(error) }
        let (body, output) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
        Task {
            var event = first
            var streamedAny = false
            while let current = event {
                switch current {
                case .chunk(let chunk):
                    streamedAny = true
                    output.yield(EventStream.event("PayloadChunk", contentType: "application/octet-stream", payload: chunk))
                case .done(.success(let result)):
                    if case .success(let payload, _) = result.outcome {
                        if !streamedAny, payload.readableBytes > 0 {
                            output.yield(EventStream.event("PayloadChunk", contentType: "application/octet-stream", payload: payload))
                        }
                        output.yield(EventStream.event("InvokeComplete", contentType: "application/json", payload: ByteBuffer(string: "{}")))
                    } else {
                        let details = String(buffer: result.outcome.body)
                        let complete = "{\"ErrorCode\":\(JSONString.quoted(result.outcome.errorType ?? "Unhandled")),\"ErrorDetails\":\(JSONString.quoted(details))}"
                        output.yield(EventStream.event("InvokeComplete", contentType: "application/json", payload: ByteBuffer(string: complete)))
                    }
                case .done(.failure(let error)):
                    let complete = "{\"ErrorCode\":\(JSONString.quoted(error.code)),\"ErrorDetails\":\(JSONString.quoted(error.message))}"
                    output.yield(EventStream.event("InvokeComplete", contentType: "application/json", payload: ByteBuffer(string: complete)))
                }
                event = await iterator.next()
            }
            output.finish()
            _ = await invocation.value
        }
        var response = HTTPServerResponse(status: .ok, headers: [
            "Content-Type": EventStream.contentType, "X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": RequestID.make(),
        ])
        response.bodyStream = body
        return response
    }

    static func response(for result: InvokeResult) -> HTTPServerResponse {
        var headers = HTTPHeaders()
        headers.add(name: "X-Amz-Executed-Version", value: result.executedVersion)
        headers.add(name: "x-amzn-RequestId", value: result.requestID)
        if let tail = result.logTail { headers.add(name: "X-Amz-Log-Result", value: Base64.encode(Array(tail.utf8))) }
        switch result.outcome {
        case .success(let body, let contentType):
            headers.add(name: "Content-Type", value: contentType ?? "application/json")
            return HTTPServerResponse(status: .ok, headers: headers, body: body)
        case .functionError, .initError, .platformError, .streamed:
            headers.add(name: "X-Amz-Function-Error", value: "Unhandled")
            headers.add(name: "Content-Type", value: "application/json")
            return HTTPServerResponse(status: .ok, headers: headers, body: result.outcome.body)
        }
    }

    static func error(_ error: InvokeError) -> HTTPServerResponse {
        var headers = HTTPHeaders()
        headers.add(name: "x-amzn-ErrorType", value: error.code)
        headers.add(name: "x-amzn-RequestId", value: RequestID.make())
        return .json(
            HTTPResponseStatus(statusCode: Int(error.status)),
            "{\"Type\":\"User\",\"message\":\(JSONString.quoted(error.message))}",
            headers: headers
        )
    }
}

/// Checks that an invoke payload is JSON, as Lambda does.
public enum JSONPayload {
    /// `nil` for valid JSON (or an empty payload), else what is wrong.
    public static func problem(in payload: ByteBuffer) -> String? {
        guard payload.readableBytes > 0 else { return nil }
        do {
            _ = try JSONDecoder().decode(JSONValue.self, from: Data(payload.readableBytesView))
            return nil
        } catch {
            return "\(error)"
        }
    }
}
