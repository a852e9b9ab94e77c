#if canImport(Glibc)
import Glibc
#endif
import MartletRuntime
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore

/// Returns the event unchanged: the smallest possible function, used by benchmarks and smoke tests.
public struct EchoHandler: ByteHandler {
    public init() {}

    public func handle(_ event: ByteBuffer, context: InvocationContext) async throws -> ByteBuffer {
        event
    }
}

/// Greets by name: a typed handler (`{"name": "Ada"}` → `{"message": "Hello, Ada!"}`).
public struct HelloHandler: EventHandler {
    public struct Event: Decodable, Sendable {
        public var name: String?
    }

    public struct Output: Encodable, Sendable {
        public var message: String
    }

    public init() {}

    public func handle(_ event: Event, context: InvocationContext) async throws -> Output {
        context.logger.info("Greeting", metadata: ["name": .string(event.name ?? "world")])
        return Output(message: "Hello, \(event.name ?? "world")!")
    }
}

/// Sleeps for `{"seconds": N}`, then reports the time it had left: for exercising timeouts.
public struct SleepHandler: EventHandler {
    /// `{"seconds": N}`, as the event or as the body of an HTTP API event.
    public struct Event: Decodable, Sendable {
        public var seconds: Double?
        public var body: String?

        var duration: Double {
            if let seconds { return seconds }
            struct Inner: Decodable { var seconds: Double }
            return body.flatMap { try? JSONDecoder().decode(Inner.self, from: Data($0.utf8)).seconds } ?? 0
        }
    }

    public struct Output: Encodable, Sendable {
        public var slept: Double
        public var remainingMilliseconds: Int64
    }

    public init() {}

    public func handle(_ event: Event, context: InvocationContext) async throws -> Output {
        context.logger.info("Sleeping", metadata: ["seconds": .stringConvertible(event.duration)])
        try await Task.sleep(for: .milliseconds(Int64(event.duration * 1000)))
        context.logger.info("Awake")
        return Output(slept: event.duration, remainingMilliseconds: context.remainingTime.components.seconds * 1000
            + context.remainingTime.components.attoseconds / 1_000_000_000_000_000)
    }
}

/// Ends its process with `{"exitCode": N}` — as the event, or as the body of an HTTP API event — (a
/// crash, for exercising restarts); otherwise reports its process id.
public struct CrashHandler: EventHandler {
    public struct Event: Decodable, Sendable {
        public var exitCode: Int32?
        public var body: String?
    }

    public struct Output: Encodable, Sendable {
        public var processID: Int32
    }

    public init() {}

    public func handle(_ event: Event, context: InvocationContext) async throws -> Output {
        if let code = event.exitCode { exit(code) }
        if let body = event.body, let inner = try? JSONDecoder().decode(Event.self, from: Data(body.utf8)), let code = inner.exitCode { exit(code) }
        return Output(processID: getpid())
    }
}

/// Streams `{"chunks": N, "intervalMilliseconds": M}` numbered lines, one every M ms (default 5 lines,
/// 100 ms), like a model emitting tokens; with `"failAfter": K` it throws after K lines. An HTTP API
/// event (which has a `requestContext.http`) gets an HTTP head (200, `text/plain`) and reads its
/// options from the query string. For exercising response streaming.
public struct StreamHandler: StreamingHandler {
    struct Options: Decodable {
        var chunks: Int?
        var intervalMilliseconds: Int?
        var failAfter: Int?
        var queryStringParameters: [String: String]?
        var requestContext: RequestContext?

        struct RequestContext: Decodable {
            var http: HTTPDescription?
        }

        struct HTTPDescription: Decodable {
            var method: String?
        }
    }

    public init() {}

    public func handle(_ event: ByteBuffer, response: ResponseStream, context: InvocationContext) async throws {
        let options = (try? JSONDecoder().decode(Options.self, from: Data(event.readableBytesView))) ?? Options()
        let query = options.queryStringParameters ?? [:]
        let chunks = min(10_000, max(0, options.chunks ?? query["chunks"].flatMap { Int($0) } ?? 5))
        let interval = min(10_000, max(0, options.intervalMilliseconds ?? query["intervalMilliseconds"].flatMap { Int($0) } ?? 100))
        let failAfter = options.failAfter ?? query["failAfter"].flatMap { Int($0) }
        if options.requestContext?.http != nil {
            try await response.writeHTTPHead(statusCode: 200, headers: ["content-type": "text/plain; charset=utf-8"])
        } else {
            response.setContentType("text/plain; charset=utf-8")
        }
        for index in 0..<chunks {
            if let failAfter, index == failAfter {
                throw StreamFailure(message: "failed after \(failAfter) chunks, as asked")
            }
            if index > 0, interval > 0 { try await Task.sleep(for: .milliseconds(interval)) }
            try await response.write("chunk \(index + 1) of \(chunks)\n")
        }
    }

    struct StreamFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
