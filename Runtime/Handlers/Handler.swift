import FoundationEssentials
import NIOCore

/// The bytes-level handler the runtime loop calls: the event as it arrived, the response as it leaves.
public protocol ByteHandler: Sendable {
    /// Handles one invocation; a thrown error becomes a Lambda error response.
    func handle(_ event: ByteBuffer, context: InvocationContext) async throws -> ByteBuffer
}

/// A typed handler: a `Decodable` event in, an `Encodable` output out, as JSON.
///
/// ```swift
/// struct Greet: EventHandler {
///     func handle(_ event: [String: String], context: InvocationContext) async throws -> String {
///         "Hello, \(event["name"] ?? "world")"
///     }
/// }
/// ```
public protocol EventHandler: Sendable {
    associatedtype Event: Decodable
    associatedtype Output: Encodable
    /// Handles one decoded event.
    func handle(_ event: Event, context: InvocationContext) async throws -> Output
}

/// Runs an ``EventHandler`` as a ``ByteHandler``: JSON in, JSON out, with Lambda's error types for bad input.
public struct JSONHandlerAdapter<Handler: EventHandler>: ByteHandler {
    public let handler: Handler

    public init(_ handler: Handler) { self.handler = handler }

    public func handle(_ event: ByteBuffer, context: InvocationContext) async throws -> ByteBuffer {
        let decoded: Handler.Event
        if let direct = Handler.Event.self as? any DirectJSONDecodable.Type,
            let event = event.withUnsafeReadableBytes({ direct.init(jsonBytes: $0) }) as? Handler.Event
        {
            decoded = event
        } else {
            do {
                decoded = try JSONDecoder().decode(Handler.Event.self, from: Data(event.readableBytesView))
            } catch {
                throw FunctionError.unmarshal(error)
            }
        }
        let output = try await handler.handle(decoded, context: context)
        if let direct = output as? any DirectJSONEncodable { return ByteBuffer(bytes: direct.jsonBytes) }
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            return ByteBuffer(bytes: try encoder.encode(output))
        } catch {
            throw FunctionError.marshal(error)
        }
    }
}

/// The output of a handler that returns nothing; encodes as JSON `null`.
public struct VoidOutput: Encodable, Sendable {
    public init() {}
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encodeNil()
    }
}

/// A ``ByteHandler`` from a closure.
public struct ClosureByteHandler: ByteHandler {
    private let body: @Sendable (ByteBuffer, InvocationContext) async throws -> ByteBuffer

    public init(_ body: @escaping @Sendable (ByteBuffer, InvocationContext) async throws -> ByteBuffer) {
        self.body = body
    }

    public func handle(_ event: ByteBuffer, context: InvocationContext) async throws -> ByteBuffer {
        try await body(event, context)
    }
}

/// An ``EventHandler`` from a closure.
public struct ClosureEventHandler<Event: Decodable, Output: Encodable>: EventHandler {
    private let body: @Sendable (Event, InvocationContext) async throws -> Output

    public init(_ body: @escaping @Sendable (Event, InvocationContext) async throws -> Output) {
        self.body = body
    }

    public func handle(_ event: Event, context: InvocationContext) async throws -> Output {
        try await body(event, context)
    }
}
