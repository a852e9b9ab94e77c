import Logging

/// The runtime's configuration, read once from Lambda's reserved environment variables.
public struct RuntimeConfiguration: Sendable {
    /// `AWS_LAMBDA_RUNTIME_API`: `host:port` of the Runtime API.
    public var runtimeAPI: String?
    /// `_HANDLER`: which registered handler to run.
    public var handler: String
    /// `AWS_LAMBDA_LOG_FORMAT`: `Text` (default) or `JSON`.
    public var logFormat: LogFormat
    /// `AWS_LAMBDA_LOG_LEVEL`: the minimum level logged (default INFO).
    public var logLevel: Logger.Level
    /// `AWS_LAMBDA_MAX_CONCURRENCY`: invocations served at once in this process (default 1).
    public var maxConcurrency: Int
    /// `AWS_LAMBDA_FUNCTION_NAME`, for log labels.
    public var functionName: String

    public init(
        runtimeAPI: String?, handler: String, logFormat: LogFormat = .text, logLevel: Logger.Level = .info,
        maxConcurrency: Int = 1, functionName: String = "function"
    ) {
        self.runtimeAPI = runtimeAPI
        self.handler = handler
        self.logFormat = logFormat
        self.logLevel = logLevel
        self.maxConcurrency = maxConcurrency
        self.functionName = functionName
    }

    /// Reads `AWS_LAMBDA_RUNTIME_API`, `_HANDLER`, `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`,
    /// `AWS_LAMBDA_MAX_CONCURRENCY` and `AWS_LAMBDA_FUNCTION_NAME`.
    public init(environment: [String: String]) {
        let concurrency = environment["AWS_LAMBDA_MAX_CONCURRENCY"].flatMap { Int($0) } ?? 1
        // Managed Instances (any concurrency above one) support JSON logs only.
        let format: LogFormat =
            concurrency > 1 || environment["AWS_LAMBDA_LOG_FORMAT"]?.uppercased() == "JSON" ? .json : .text
        self.init(
            runtimeAPI: environment["AWS_LAMBDA_RUNTIME_API"],
            handler: environment["_HANDLER"] ?? "",
            logFormat: format,
            logLevel: environment["AWS_LAMBDA_LOG_LEVEL"].flatMap { Logger.Level(lambdaName: $0) } ?? .info,
            maxConcurrency: max(1, concurrency),
            functionName: environment["AWS_LAMBDA_FUNCTION_NAME"] ?? "function"
        )
        metricsEnabled = environment["MARTLET_METRICS"]?.lowercased() != "off"
    }

    /// `MARTLET_METRICS`: `off` stops the runtime writing its EMF metrics lines (on by default).
    public var metricsEnabled = true
}
