import CoreMetrics
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The entry point of a `bootstrap`: reads Lambda's environment, initialises the handler named by
/// `_HANDLER`, and serves invocations until the process is stopped.
///
/// ```swift
/// var handlers = HandlerRegistry()
/// handlers.register("echo") { ClosureByteHandler { event, _ in event } }
/// await Runtime.main(handlers)
/// ```
public enum Runtime {
    private static let started = Atomic<Bool>(false)

    /// Runs the runtime with the process environment and exits the process with its status.
    public static func main(_ registry: HandlerRegistry) async -> Never {
        let environment = ProcessEnvironment.current
        let configuration = RuntimeConfiguration(environment: environment)
        // One event loop thread serves an environment that takes one invocation at a time (the
        // Runtime API connection and the AWS calls are I/O): a cold start makes one thread, not one
        // per core. Several invocations at once get up to one loop each.
        if environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil {
            NIOSingletons.groupLoopCountSuggestion = configuration.maxConcurrency > 1 ? min(configuration.maxConcurrency, System.coreCount) : 1
        }
        let status = await run(registry, configuration: configuration)
        exit(status)
    }

    /// Runs the runtime; returns the process exit status (0 only after a normal stop).
    ///
    /// An unknown handler or a throwing initialiser is reported to `/runtime/init/error` and returns 1;
    /// a failure of the Runtime API itself is printed to standard error and returns 1.
    /// A second concurrent run in one process is refused.
    public static func run(
        _ registry: HandlerRegistry,
        configuration: RuntimeConfiguration,
        logSink: @escaping @Sendable (String) -> Void = LambdaLogHandler.writeToStandardOutput
    ) async -> Int32 {
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            printError("the runtime is already running in this process")
            return 1
        }
        defer { started.store(false, ordering: .releasing) }

        let logger = Logger(label: configuration.functionName) { label in
            LambdaLogHandler(label: label, format: configuration.logFormat, level: configuration.logLevel, sink: logSink)
        }
        guard let address = configuration.runtimeAPI, !address.isEmpty else {
            printError("AWS_LAMBDA_RUNTIME_API is not set; this program runs inside Lambda or `martlet invoke`")
            return 1
        }
        do {
            // Metrics first, so a handler's own metrics (made as it initialises) go to the same backend.
            let metrics = makeMetrics(configuration)
            return try await HTTPRuntimeAPIClient.withConnection(to: address) { client in
                guard let handler = try await initialise(registry, configuration: configuration, client: client, logger: logger) else {
                    return 1
                }
                try await serve(handler, first: client, address: address, configuration: configuration, logger: logger, metrics: metrics)
                return 0
            }
        } catch where Task.isCancelled || error is CancellationError {
            return 0  // Cancellation is a normal stop.
        } catch {
            printError("\(error)")
            return 1
        }
    }

    private static let metricsBootstrapped = Atomic<Bool>(false)

    /// EMF metrics for the function, installed as the process's swift-metrics backend (so handlers'
    /// own metrics go out with the runtime's, after each invocation); nil when `MARTLET_METRICS=off`.
    private static func makeMetrics(_ configuration: RuntimeConfiguration) -> InvocationMetrics? {
        guard configuration.metricsEnabled else { return nil }
        let factory = EMFMetricsFactory(namespace: "Martlet")
        if metricsBootstrapped.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
            MetricsSystem.bootstrap(factory)
        }
        return InvocationMetrics(functionName: configuration.functionName, factory: factory) { factory.flush() }
    }

    /// Makes the handler, or reports why it cannot be made.
    private static func initialise(
        _ registry: HandlerRegistry, configuration: RuntimeConfiguration, client: HTTPRuntimeAPIClient, logger: Logger
    ) async throws -> (any ByteHandler)? {
        guard let factory = registry.factory(for: configuration.handler) else {
            let known = registry.names.joined(separator: ", ")
            let error = FunctionError(
                errorType: "Runtime.NoSuchHandler",
                errorMessage: "Unknown handler '\(configuration.handler)' (from _HANDLER). Known handlers: \(known)."
            )
            logger.critical("Init failed", metadata: ["error.type": .string(error.errorType), "error.message": .string(error.errorMessage)])
            try await client.reportInitError(error)
            return nil
        }
        do {
            return try await factory()
        } catch {
            var reported = FunctionError(error)
            if !reported.errorType.hasPrefix("Runtime.") {
                reported = FunctionError(
                    errorType: "Runtime.InitError",
                    errorMessage: "Handler '\(configuration.handler)' failed to initialise: \(reported.errorType): \(reported.errorMessage)"
                )
            }
            logger.critical("Init failed", metadata: ["error.type": .string(reported.errorType), "error.message": .string(reported.errorMessage)])
            try await client.reportInitError(reported)
            return nil
        }
    }

    /// Runs `maxConcurrency` loops, each on its own connection (the first reuses the init connection).
    private static func serve(
        _ handler: any ByteHandler, first: HTTPRuntimeAPIClient, address: String, configuration: RuntimeConfiguration, logger: Logger,
        metrics: InvocationMetrics?
    ) async throws {
        let concurrency = configuration.maxConcurrency
        guard concurrency > 1 else {
            try await RuntimeLoop.run(client: first, handler: handler, logger: logger, metrics: metrics)
            return
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 1..<concurrency {
                group.addTask {
                    try await HTTPRuntimeAPIClient.withConnection(to: address) { client in
                        try await RuntimeLoop.run(client: client, handler: handler, logger: logger, exportsTraceID: false, metrics: metrics)
                    }
                }
            }
            try await RuntimeLoop.run(client: first, handler: handler, logger: logger, exportsTraceID: false, metrics: metrics)
            try await group.waitForAll()
        }
    }

    private static func printError(_ message: String) {
        var line = "martlet-runtime: \(message)\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
