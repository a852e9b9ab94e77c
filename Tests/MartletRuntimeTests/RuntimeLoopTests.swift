import FoundationEssentials
import MartletLocal
import MartletRuntime
import MartletTestSupport
import NIOCore
import Synchronization
import Testing

private struct Greeting: EventHandler {
    struct Event: Decodable { var name: String }
    struct Output: Encodable { var message: String }
    func handle(_ event: Event, context: InvocationContext) async throws -> Output {
        Output(message: "Hello, \(event.name)!")
    }
}

private struct ValidationError: Error, CustomStringConvertible {
    var description: String { "job payload missing 'model'" }
}

@Suite("Runtime loop against the local Runtime API")
struct RuntimeLoopTests {
    @Test("An echo handler's response reaches the caller unchanged")
    func echoes() async throws {
        let outcome = try await withRuntimeLoop(handler: ClosureByteHandler { event, _ in event }) { environment in
            await environment.invoke(.json(#"{"hello":"world"}"#))
        }
        #expect(outcome.isSuccess)
        #expect(outcome.body.text == #"{"hello":"world"}"#)
    }

    @Test("A typed handler decodes the event and encodes its output as JSON")
    func typedHandler() async throws {
        let outcome = try await withRuntimeLoop(handler: JSONHandlerAdapter(Greeting())) { environment in
            await environment.invoke(.json(#"{"name":"Ada"}"#))
        }
        #expect(outcome.body.text == #"{"message":"Hello, Ada!"}"#)
    }

    @Test("A thrown error becomes a Lambda error response and the loop serves the next invocation")
    func handlerErrorThenNext() async throws {
        let handler = ClosureByteHandler { event, _ in
            if event.text.contains("fail") { throw ValidationError() }
            return event
        }
        let lines = LineRecorder()
        let (failed, next) = try await withRuntimeLoop(handler: handler, logSink: lines.sink) { environment in
            (await environment.invoke(.json(#""fail""#)), await environment.invoke(.json(#""ok""#)))
        }
        guard case .functionError(let body, let type) = failed else {
            Issue.record("expected a function error, got \(failed)")
            return
        }
        #expect(type == "Function.ValidationError")
        let error = try JSONDecoder().decode(FunctionError.self, from: Data(body.readableBytesView))
        #expect(error == FunctionError(errorType: "ValidationError", errorMessage: "job payload missing 'model'"))
        #expect(next.body.text == #""ok""#)
        #expect(lines.lines.contains { $0.contains("\tERROR\tInvocation failed") && $0.contains("error.type=ValidationError") })
    }

    @Test("Malformed event JSON is a Runtime.UnmarshalError and the loop survives")
    func malformedEvent() async throws {
        let (bad, good) = try await withRuntimeLoop(handler: JSONHandlerAdapter(Greeting())) { environment in
            (await environment.invoke(.json(#"{"name": 42}"#)), await environment.invoke(.json(#"{"name":"Grace"}"#)))
        }
        #expect(bad.errorType == "Runtime.UnmarshalError")
        #expect(bad.body.text.contains("Unable to unmarshal input"))
        #expect(good.body.text == #"{"message":"Hello, Grace!"}"#)
    }

    @Test("The context carries the deadline, ARN, trace id and a request-tagged logger")
    func contextFromHeaders() async throws {
        let lines = LineRecorder()
        let handler = ClosureByteHandler { _, context in
            context.logger.info("inside")
            let remaining = context.remainingTime
            let trace = ProcessEnvironment.current["_X_AMZN_TRACE_ID"] ?? "unset"
            return ByteBuffer(string: "\(remaining > .zero && remaining <= .seconds(2))|\(context.invokedFunctionARN)|\(context.traceID ?? "")|\(trace)|\(context.requestID)")
        }
        let trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
        let request = RuntimeEnvironment.Request.json("{}", timeout: .seconds(2), traceID: trace)
        let outcome = try await withRuntimeLoop(handler: handler, logSink: lines.sink) { environment in
            await environment.invoke(request)
        }
        let parts = outcome.body.text.split(separator: "|").map(String.init)
        #expect(parts == ["true", "arn:aws:lambda:us-east-1:000000000000:function:test", trace, trace, request.requestID])
        #expect(lines.lines.contains { $0.contains("\t\(request.requestID)\tINFO\tinside") })
    }

    @Test("Large payloads: 5 MB round-trips, and a response over 6 MB is refused while the loop goes on")
    func largePayloads() async throws {
        let handler = ClosureByteHandler { event, _ in
            if event.text == #""big""# { return ByteBuffer(repeating: UInt8(ascii: "x"), count: 7 * 1024 * 1024) }
            return event
        }
        let fiveMegabytes = "\"" + String(repeating: "a", count: 5 * 1024 * 1024) + "\""
        let (large, tooLarge, after) = try await withRuntimeLoop(handler: handler) { environment in
            (
                await environment.invoke(.json(fiveMegabytes)),
                await environment.invoke(.json(#""big""#)),
                await environment.invoke(.json(#""after""#))
            )
        }
        #expect(large.body.readableBytes == fiveMegabytes.utf8.count)
        #expect(tooLarge.errorType == "Function.ResponseSizeTooLarge")
        #expect(tooLarge.body.text.contains("(7340032 bytes) exceeded maximum allowed payload size (6291556 bytes)"))
        #expect(after.body.text == #""after""#)
    }

    @Test("Several loops in one process serve invocations at once")
    func concurrentLoops() async throws {
        // Each invocation waits until all four are in flight: only concurrent loops can finish.
        let inFlight = Mutex(0)
        let handler = ClosureByteHandler { event, _ in
            inFlight.withLock { $0 += 1 }
            let deadline = ContinuousClock.now + .seconds(10)
            while inFlight.withLock({ $0 }) < 4 {
                guard ContinuousClock.now < deadline else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(1))
            }
            return event
        }
        let outcomes = try await withRuntimeLoop(handler: handler, maxConcurrency: 4) { environment in
            await withTaskGroup(of: String.self) { group in
                for index in 0..<4 { group.addTask { await environment.invoke(.json("\(index)")).body.text } }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(outcomes.sorted() == ["0", "1", "2", "3"])
    }
}
