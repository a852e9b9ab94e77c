import Foundation
import Logging
import MartletLocal
import MartletRuntime
import MartletTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// Lambda's Invoke API over one real bootstrap, through `SingleFunctionInvoker`.
@Suite("Invoke API")
struct InvokeAPITests {
    private func withEndpoint<R: Sendable>(
        handler: String, timeout: Duration = .seconds(3), printLine: @escaping @Sendable (String) -> Void = { _ in },
        _ body: (InvokeAPIEndpoint) async throws -> R
    ) async throws -> R {
        let configuration = FunctionConfiguration(name: handler, handler: handler, command: [builtProduct("bootstrap")], timeout: timeout)
        let invoker = SingleFunctionInvoker(configuration: configuration, logger: Logger(label: "test"), printLine: printLine)
        let endpoint = InvokeAPIEndpoint(invoker: invoker, logger: Logger(label: "test"))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await invoker.run() }
            defer { group.cancelAll() }
            return try await body(endpoint)
        }
    }

    private func request(_ function: String, _ body: String, headers: HTTPHeaders = [:], bodyLength: Int? = nil) -> HTTPServerRequest {
        HTTPServerRequest(
            method: .POST, uri: "/2015-03-31/functions/\(function)/invocations", headers: headers, body: ByteBuffer(string: body),
            bodyTooLarge: false, bodyLength: bodyLength ?? body.utf8.count
        )
    }

    @Test("A synchronous invoke answers 200 with the result and the executed version")
    func success() async throws {
        let response = try await withEndpoint(handler: "hello") { await $0.answer(request("hello", #"{"name":"Ada"}"#)) }
        #expect(response.status == .ok)
        #expect(response.body.text == #"{"message":"Hello, Ada!"}"#)
        #expect(response.headers.first(name: "X-Amz-Executed-Version") == "$LATEST")
        #expect(response.headers.first(name: "X-Amz-Function-Error") == nil)
    }

    @Test("A function error answers 200 with X-Amz-Function-Error and the error body")
    func functionError() async throws {
        let response = try await withEndpoint(handler: "hello") { await $0.answer(request("hello", #"{"name":1}"#)) }
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "X-Amz-Function-Error") == "Unhandled")
        #expect(response.body.text.contains(#""errorType":"Runtime.UnmarshalError""#))
    }

    @Test("After a timeout the next invoke gets a fresh environment")
    func restartAfterTimeout() async throws {
        let (first, second) = try await withEndpoint(handler: "sleep", timeout: .seconds(1)) { endpoint in
            (await endpoint.answer(request("sleep", #"{"seconds":3}"#)), await endpoint.answer(request("sleep", #"{"seconds":0}"#)))
        }
        #expect(first.body.text.contains("Sandbox.Timedout"))
        #expect(second.headers.first(name: "X-Amz-Function-Error") == nil)
        #expect(second.body.text.contains(#""slept":0"#))
    }

    @Test("Unknown function 404, invalid JSON 400, oversized 413, Event 202, DryRun 204")
    func refusals() async throws {
        try await withEndpoint(handler: "echo") { endpoint in
            let missing = await endpoint.answer(request("other", "{}"))
            #expect(missing.status == .notFound)
            #expect(missing.headers.first(name: "x-amzn-ErrorType") == "ResourceNotFoundException")
            #expect(missing.body.text.contains("Function not found: arn:aws:lambda:us-east-1:000000000000:function:other"))

            let invalid = await endpoint.answer(request("echo", "{not json"))
            #expect(invalid.status == .badRequest)
            #expect(invalid.headers.first(name: "x-amzn-ErrorType") == "InvalidRequestContentException")

            let large = await endpoint.answer(request("echo", "{}", bodyLength: LambdaLimits.maxRequestSize + 1))
            #expect(large.status == .payloadTooLarge)
            #expect(large.headers.first(name: "x-amzn-ErrorType") == "RequestTooLargeException")

            let event = await endpoint.answer(request("echo", "{}", headers: ["X-Amz-Invocation-Type": "Event"]))
            #expect(event.status == .accepted)
            let dryRun = await endpoint.answer(request("echo", "{}", headers: ["X-Amz-Invocation-Type": "DryRun"]))
            #expect(dryRun.status == .noContent)

            let byARN = await endpoint.answer(request("arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aecho", "[1]"))
            #expect(byARN.body.text == "[1]")
        }
    }

    @Test("The response carries the invocation's request id, and Tail returns the last 4 KB of its log")
    func requestIDAndLogTail() async throws {
        let response = try await withEndpoint(handler: "hello") { endpoint in
            await endpoint.answer(request("hello", #"{"name":"Ada"}"#, headers: ["X-Amz-Log-Type": "Tail"]))
        }
        let requestID = try #require(response.headers.first(name: "x-amzn-RequestId"))
        let encoded = try #require(response.headers.first(name: "X-Amz-Log-Result"))
        let tail = String(decoding: try #require(Base64.decode(encoded)), as: UTF8.self)
        #expect(tail.hasPrefix("START RequestId: \(requestID) Version: $LATEST\n"))
        #expect(tail.contains("\t\(requestID)\tINFO\tGreeting name=Ada"))
        #expect(tail.contains("END RequestId: \(requestID)\n"))
        #expect(tail.contains("REPORT RequestId: \(requestID)\tDuration: "))

        let untailed = try await withEndpoint(handler: "echo") { await $0.answer(request("echo", "{}")) }
        #expect(untailed.headers.first(name: "X-Amz-Log-Result") == nil)
    }

    @Test("An Event invocation is accepted at once and then runs")
    func eventInvocation() async throws {
        let lines = LineRecorder()
        try await withEndpoint(handler: "sleep", printLine: lines.sink) { endpoint in
            let accepted = await endpoint.answer(request("sleep", #"{"seconds":2}"#, headers: ["X-Amz-Invocation-Type": "Event"]))
            #expect(accepted.status == .accepted)
            let requestID = try #require(accepted.headers.first(name: "x-amzn-RequestId"))
            // Answered before the two-second invocation could have ended.
            #expect(!lines.lines.contains("END RequestId: \(requestID)"))
            // A synchronous invoke queues behind it, so once it answers the event has run.
            let after = await endpoint.answer(request("sleep", #"{"seconds":0}"#))
            #expect(after.status == .ok)
            #expect(lines.lines.contains("END RequestId: \(requestID)"))
        }
    }

    @Test("Only $LATEST exists locally: another version or alias is not found")
    func qualifiers() async throws {
        try await withEndpoint(handler: "echo") { endpoint in
            let latest = await endpoint.answer(request("echo:$LATEST", "[2]"))
            #expect(latest.body.text == "[2]")
            let alias = await endpoint.answer(request("echo:prod", "{}"))
            #expect(alias.status == .notFound)
            #expect(alias.body.text.contains("function:echo:prod"))
            let query = await endpoint.answer(HTTPServerRequest(method: .POST, uri: "/2015-03-31/functions/echo/invocations?Qualifier=7", body: ByteBuffer(string: "{}")))
            #expect(query.status == .notFound)
            #expect(query.body.text.contains("function:echo:7"))
        }
    }
}
