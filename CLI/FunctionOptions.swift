import ArgumentParser
import Logging
import Foundation
import MartletLocal

/// Options shared by the commands that run a function.
struct FunctionOptions: ParsableArguments {
    @Argument(help: "The function: a handler name of the bootstrap (e.g. echo, hello, sleep).")
    var function: String

    @Option(help: "The invocation timeout in seconds (1-900), as the function's Timeout.")
    var timeout: Double = 3

    @Option(help: "The memory size in MB (128-10240).")
    var memory: Int = 128

    @Option(help: "The region the function sees.")
    var region: String = "us-east-1"

    @Option(name: .customLong("env"), help: "A function environment variable, NAME=VALUE (repeatable).")
    var variables: [String] = []

    @Option(help: "Lambda's log format for the function: Text or JSON.")
    var logFormat: String?

    @Option(help: "Lambda's log level for the function: TRACE, DEBUG, INFO, WARN, ERROR or FATAL.")
    var logLevel: String?

    @Option(help: "Run this program instead of the package's bootstrap (arguments split on spaces).")
    var command: String?

    @Option(help: "The handler (_HANDLER); the function's name when omitted.")
    var handler: String?

    @Option(help: "LAMBDA_TASK_ROOT and the working directory; the program's folder when omitted.")
    var taskRoot: String?

    @Flag(help: "Use the bootstrap as it is; do not build it when missing or stale.")
    var noBuild = false

    @Option(help: "The build configuration of the bootstrap: debug or release.")
    var configuration: String = "debug"

    @Option(help: "Invocations one process serves at once (AWS_LAMBDA_MAX_CONCURRENCY, as on Lambda Managed Instances; 1-64).")
    var maxConcurrency = 1

    func validate() throws {
        if !(1...900).contains(timeout) { throw ValidationError("--timeout must be between 1 and 900 seconds") }
        if !(128...10240).contains(memory) { throw ValidationError("--memory must be between 128 and 10240 MB") }
        if !(1...64).contains(maxConcurrency) { throw ValidationError("--max-concurrency must be between 1 and 64") }
        if !["debug", "release"].contains(configuration) { throw ValidationError("--configuration must be debug or release") }
        if let logFormat, !["Text", "JSON"].contains(logFormat) { throw ValidationError("--log-format must be Text or JSON") }
        for variable in variables where !variable.contains("=") {
            throw ValidationError("--env takes NAME=VALUE, got '\(variable)'")
        }
    }

    /// The function's configuration, building the bootstrap first when asked to.
    func functionConfiguration() throws -> FunctionConfiguration {
        let argv: [String]
        if let custom = self.command {
            argv = custom.split(separator: " ").map(String.init)
        } else {
            let builder = try BootstrapBuilder(configuration: configuration)
            if !noBuild { try builder.buildIfStale() }
            guard FileManager.default.isExecutableFile(atPath: builder.executable) else {
                throw ValidationError("no bootstrap at \(builder.executable); run without --no-build to build it")
            }
            argv = [builder.executable]
        }
        var environment: [String: String] = [:]
        for variable in variables {
            let parts = variable.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            environment[String(parts[0])] = String(parts[1])
        }
        return FunctionConfiguration(
            name: function, handler: handler ?? function, command: argv, taskRoot: taskRoot, memorySize: memory,
            timeout: .milliseconds(Int64(timeout * 1000)), region: region, maxConcurrency: maxConcurrency, logFormat: logFormat, logLevel: logLevel,
            variables: environment
        )
    }

    /// The function's configuration; a usage problem is printed and ends the command with status 2.
    func configurationOrExit() throws -> FunctionConfiguration {
        do {
            return try functionConfiguration()
        } catch let error as ValidationError {
            printError(error.message)
            throw ExitCode(2)
        }
    }
}

extension Logger {
    /// The CLI's own logger: warnings and errors only, so the function's output stays readable.
    static var cli: Logger {
        var logger = Logger(label: "martlet")
        logger.logLevel = .warning
        return logger
    }
}
