import ArgumentParser
import Foundation
import Logging
import MartletLocal

/// `martlet local`: the whole application from template.yaml on this machine.
struct LocalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "Run the application locally: AWS services, functions, HTTP and WebSocket APIs and workers, from template.yaml.",
        discussion: """
            Builds the bootstrap and the worker when their sources changed, creates the template's queues, tables and \
            buckets in the local AWS endpoint, runs each function as real bootstrap processes behind API Gateway's HTTP \
            and WebSocket APIs, starts the workers, and streams every log line with the name of its source. Ctrl-C stops it all.
            """
    )

    @Option(help: "The SAM template.") var template = "template.yaml"
    @Option(help: "The data folder (state and objects); see --in-memory.") var data = ".martlet"
    @Flag(help: "Keep all state in memory (objects in a temporary folder).") var inMemory = false
    @Option(help: "The HTTP API's port.") var port = 3000
    @Option(help: "The WebSocket API's port (the @connections API is served there too).") var webSocketPort = 3001
    @Option(help: "The AWS endpoint's port.") var endpointPort = 4566
    @Option(help: "The console's port: the web demo and the live view of the stack (0 picks a free one).") var consolePort = 3002
    @Flag(help: "Serve no console.") var noConsole = false
    @Option(name: .customLong("static"), help: "The folder the console serves (the web demo).") var staticFolder = "Demo/web"
    @Option(help: "How many worker processes to run.") var workers = 1
    @Option(name: .customLong("client-key"), help: "A key clients may use (repeatable).") var clientKeys: [String] = ["local-dev-key"]
    @Option(name: .customLong("parameter"), help: "A template parameter, NAME=VALUE (repeatable).") var parameters: [String] = []
    @Flag(help: "Use the built bootstrap and worker as they are.") var noBuild = false
    @Option(name: .customLong("release-binaries"), help: "A folder holding bootstrap and martlet-worker to use instead of the debug builds (e.g. the release bin path).")
    var binaries: String?

    func run() async throws {
        var overrides: [String: String] = [:]
        for parameter in parameters {
            let parts = parameter.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw ValidationError("--parameter takes NAME=VALUE, not \(parameter)") }
            overrides[String(parts[0])] = String(parts[1])
        }
        guard FileManager.default.fileExists(atPath: template) else { throw ValidationError("no template at \(template)") }
        let bootstrap = try BootstrapBuilder(configuration: "debug")
        let worker = try BootstrapBuilder(configuration: "debug", product: "martlet-worker")
        if !noBuild, binaries == nil {
            try bootstrap.buildIfStale()
            try worker.buildIfStale()
        }
        let bootstrapPath = binaries.map { "\($0)/bootstrap" } ?? bootstrap.executable
        let workerPath = binaries.map { "\($0)/martlet-worker" } ?? worker.executable
        var options = LocalStack.Options(templatePath: template, bootstrap: bootstrapPath)
        options.worker = FileManager.default.isExecutableFile(atPath: workerPath) ? workerPath : nil
        options.dataFolder = inMemory ? nil : data
        options.httpPort = port
        options.webSocketPort = webSocketPort
        options.endpointPort = endpointPort
        options.workers = workers
        options.consolePort = noConsole ? nil : consolePort
        options.staticFolder = FileManager.default.fileExists(atPath: staticFolder) ? staticFolder : nil
        if !noConsole, options.staticFolder == nil { printError("martlet: warning: no folder \(staticFolder); the console serves only its JSON") }
        options.clientKeys = clientKeys
        options.parameterOverrides = overrides
        let printLock = NSLock()
        let stack = LocalStack(options: options, logger: .cli) { line in
            printLock.lock()
            defer { printLock.unlock() }
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        let keys = clientKeys
        defer {
            let summary = stack.metrics.summary()
            if !summary.isEmpty { printError("martlet: metrics of this run\n" + summary.map { "  " + $0 }.joined(separator: "\n")) }
        }
        try await runCancellingOnSignals {
            try await stack.run { addresses in
                printError("""
                    martlet: local stack ready
                      Console        \(addresses.console ?? "(none)")  (the web demo and a live view)
                      HTTP API       \(addresses.httpAPI)
                      WebSocket API  \(addresses.webSocket)
                      @connections   \(addresses.management)
                      AWS endpoint   \(addresses.endpoint)  (access key test, secret test)
                      client key     \(keys.first ?? "")
                    """)
            }
        }
    }
}
