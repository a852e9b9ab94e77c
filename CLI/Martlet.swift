import ArgumentParser

@main
struct Martlet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "martlet",
        abstract: "Run Martlet's Lambda functions locally, exactly as Lambda would.",
        subcommands: [InvokeCommand.self, ServeFunctionCommand.self, EndpointCommand.self, LocalCommand.self, ClientCommand.self, ContractCommand.self, EventsCommand.self]
    )
}
