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
        try await Task.sleep(for: .milliseconds(Int64(event.duration * 1000)))
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
