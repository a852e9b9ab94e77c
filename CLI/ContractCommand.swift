import ArgumentParser
import Foundation
import Functions

/// `martlet contract`: what the application's code expects of its template, as JSON.
struct ContractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contract",
        abstract: "Print the application's contract (handlers, routes, environment, resources) for checking template.yaml against it."
    )

    func run() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(ApplicationContract.document), as: UTF8.self))
    }
}
