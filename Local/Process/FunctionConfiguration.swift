/// How to run one function locally: the process to start and the Lambda settings it runs under.
public struct FunctionConfiguration: Sendable {
    /// The function's name (`AWS_LAMBDA_FUNCTION_NAME`).
    public var name: String
    /// The handler (`_HANDLER`).
    public var handler: String
    /// The program and its arguments: the `bootstrap`, or any runtime such as `python3 -m awslambdaric app.handler`.
    public var command: [String]
    /// `LAMBDA_TASK_ROOT` and the working directory; the command's folder when `nil`.
    public var taskRoot: String?
    /// Memory in MB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), 128–10,240.
    public var memorySize: Int
    /// The invocation timeout, 1–900 s.
    public var timeout: Duration
    public var region: String
    /// `AWS_LAMBDA_MAX_CONCURRENCY`: invocations at once per process (1 on standard Lambda).
    public var maxConcurrency: Int
    /// `AWS_LAMBDA_LOG_FORMAT` (`Text` or `JSON`), when set.
    public var logFormat: String?
    /// `AWS_LAMBDA_LOG_LEVEL`, when set.
    public var logLevel: String?
    /// The function's own variables, as the template's `Environment.Variables` gives them.
    public var variables: [String: String]

    public init(
        name: String, handler: String, command: [String], taskRoot: String? = nil, memorySize: Int = 128,
        timeout: Duration = LambdaLimits.defaultTimeout, region: String = "us-east-1", maxConcurrency: Int = 1,
        logFormat: String? = nil, logLevel: String? = nil, variables: [String: String] = [:]
    ) {
        self.name = name
        self.handler = handler
        self.command = command
        self.taskRoot = taskRoot
        self.memorySize = memorySize
        self.timeout = timeout
        self.region = region
        self.maxConcurrency = maxConcurrency
        self.logFormat = logFormat
        self.logLevel = logLevel
        self.variables = variables
    }

    /// What is wrong with this configuration by Lambda's rules, or `nil`.
    public var problem: String? {
        if name.isEmpty || name.utf8.count > 64 { return "function name must be 1 to 64 characters" }
        if command.isEmpty { return "no command to run" }
        if !(128...10240).contains(memorySize) { return "memory size must be between 128 and 10240 MB, got \(memorySize)" }
        if timeout < .seconds(1) || timeout > LambdaLimits.maxTimeout { return "timeout must be between 1 and 900 seconds" }
        let userSize = variables.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        if userSize > 4096 { return "environment variables exceed Lambda's 4 KB limit (\(userSize) bytes)" }
        return nil
    }

    /// The environment the process starts with: Lambda's reserved variables, then the function's own.
    public func processEnvironment(runtimeAPI: String, inherited: [String: String]) -> [String: String] {
        let root = taskRoot ?? Self.folder(of: command[0])
        var environment: [String: String] = [
            "AWS_LAMBDA_RUNTIME_API": runtimeAPI,
            "_HANDLER": handler,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": String(memorySize),
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/\(name)",
            "AWS_LAMBDA_LOG_STREAM_NAME": Self.logStreamName(),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "LAMBDA_TASK_ROOT": root,
            "LAMBDA_RUNTIME_DIR": root,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": inherited["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
        ]
        if let library = inherited["LD_LIBRARY_PATH"] { environment["LD_LIBRARY_PATH"] = library }
        if maxConcurrency > 1 { environment["AWS_LAMBDA_MAX_CONCURRENCY"] = String(maxConcurrency) }
        if let logFormat { environment["AWS_LAMBDA_LOG_FORMAT"] = logFormat }
        if let logLevel { environment["AWS_LAMBDA_LOG_LEVEL"] = logLevel }
        for (key, value) in variables { environment[key] = value }
        return environment
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func logStreamName() -> String {
        let date = WallClockDate.today()
        let id = RequestID.make().replacingOccurrences(of: "-", with: "")
        return "\(date)/[$LATEST]\(id)"
    }
}
