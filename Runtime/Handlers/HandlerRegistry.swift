/// The handlers one `bootstrap` can run, by name; the runtime picks one by `_HANDLER`.
///
/// ```swift
/// var handlers = HandlerRegistry()
/// handlers.register("echo") { ClosureByteHandler { event, _ in event } }
/// handlers.register("jobs") { try await JobsHandler(configuration: .init(environment: env)) }
/// ```
public struct HandlerRegistry: Sendable {
    /// Makes a handler once per process, during Lambda's init phase.
    public typealias Factory = @Sendable () async throws -> any ByteHandler

    private var factories: [String: Factory] = [:]

    public init() {}

    /// Registers a bytes-level handler under `name`; a later registration of the same name replaces it.
    public mutating func register(_ name: String, _ make: @escaping @Sendable () async throws -> any ByteHandler) {
        factories[name] = make
    }

    /// Registers a typed handler under `name`.
    public mutating func register<Handler: EventHandler>(_ name: String, _ make: @escaping @Sendable () async throws -> Handler) {
        factories[name] = { JSONHandlerAdapter(try await make()) }
    }

    /// Registers a handler that streams its response (see ``StreamingHandler``).
    public mutating func register<Handler: StreamingHandler>(_ name: String, streaming make: @escaping @Sendable () async throws -> Handler) {
        factories[name] = { StreamingHandlerAdapter(try await make()) }
    }

    /// The registered names, sorted.
    public var names: [String] { factories.keys.sorted() }

    /// The factory registered under exactly `name`.
    public func factory(for name: String) -> Factory? { factories[name] }
}
