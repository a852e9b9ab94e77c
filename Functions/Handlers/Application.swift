import MartletRuntime

/// Every handler the application's single `bootstrap` can run, by the name a function's `Handler` gives.
public enum Application {
    /// The registry `bootstrap` serves from; configuration comes from `environment`, read once here.
    public static func handlers(environment: [String: String]) -> HandlerRegistry {
        var handlers = HandlerRegistry()
        handlers.register("echo") { EchoHandler() }
        handlers.register("hello") { HelloHandler() }
        handlers.register("sleep") { SleepHandler() }
        return handlers
    }
}
