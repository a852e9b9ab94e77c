import MartletRuntime
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
    public struct Event: Decodable, Sendable {
        public var seconds: Double
    }

    public struct Output: Encodable, Sendable {
        public var slept: Double
        public var remainingMilliseconds: Int64
    }

    public init() {}

    public func handle(_ event: Event, context: InvocationContext) async throws -> Output {
        try await Task.sleep(for: .milliseconds(Int64(event.seconds * 1000)))
        return Output(slept: event.seconds, remainingMilliseconds: context.remainingTime.components.seconds * 1000
            + context.remainingTime.components.attoseconds / 1_000_000_000_000_000)
    }
}
