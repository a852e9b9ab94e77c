import Logging
import MartletJobs
import MartletRuntime

/// Every handler the application's single `bootstrap` can run, by the name a function's `Handler` gives.
public enum Application {
    /// The registry `bootstrap` serves from; configuration comes from `environment`, read once when
    /// the chosen handler starts (a missing variable is an init error naming it).
    public static func handlers(environment: [String: String]) -> HandlerRegistry {
        var handlers = HandlerRegistry()
        handlers.register("echo") { EchoHandler() }
        handlers.register("hello") { HelloHandler() }
        handlers.register("sleep") { SleepHandler() }
        handlers.register("crash") { CrashHandler() }
        handlers.register("stream", streaming: { StreamHandler() })
        let logger = Logger(label: "martlet.jobs")
        @Sendable func service(authenticatesClients: Bool) async throws -> JobService {
            try await JobService.make(environment: environment, authenticatesClients: authenticatesClients, logger: logger)
        }
        handlers.register("connect") { ConnectHandler(service: try await service(authenticatesClients: true)) }
        handlers.register("disconnect") { DisconnectHandler(service: try await service(authenticatesClients: false)) }
        handlers.register("message") { MessageHandler(service: try await service(authenticatesClients: false)) }
        // The HTTP routes share one handler type; each function still names its own route's handler.
        for name in ApplicationContract.httpHandlers.keys {
            handlers.register(name) { JobsHTTPHandler(service: try await service(authenticatesClients: true)) }
        }
        return handlers
    }
}
