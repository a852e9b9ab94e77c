import ArgumentParser
import Foundation
import Logging
import MartletLocal
import NIOCore

/// `martlet serve-function`: Lambda's Invoke API for one function on a local port.
struct ServeFunctionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve-function",
        abstract: "Serve Lambda's Invoke API for one function, restarting its runtime after a crash or timeout.",
        discussion: """
            `aws lambda invoke --endpoint-url http://127.0.0.1:PORT --function-name NAME out.json` then works. \
            Each invocation prints START, the function's logs, END and REPORT to standard error.
            """
    )

    @OptionGroup var options: FunctionOptions

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port of the Invoke API (0 picks a free one).")
    var port: Int = 3001

    func run() async throws {
        let configuration = try options.configurationOrExit()
        let logger = Logger.cli
        let invoker = SingleFunctionInvoker(configuration: configuration, logger: logger)
        let server = HTTPServer(host: host, port: port, maxBodySize: LambdaLimits.maxRequestSize, logger: logger) { request in
            await InvokeAPIEndpoint(invoker: invoker, logger: logger).answer(request)
        }
        let (host, port) = (host, port)
        try await runCancellingOnSignals {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await invoker.run() }
                group.addTask {
                    try await server.run { address in
                        printError("martlet: Invoke API for '\(configuration.name)' at http://\(address.ipAddress ?? host):\(address.port ?? port)")
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }
}
