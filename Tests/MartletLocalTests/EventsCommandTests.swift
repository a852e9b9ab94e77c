import Foundation
import MartletRuntime
import MartletTestSupport
import Testing

/// `martlet events` as a user runs it: a real process, its output and its exit status.
@Suite("martlet events")
struct EventsCommandTests {
    private struct Run {
        var status: Int32
        var standardOutput: Data
        var standardError: String
    }

    private func martlet(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: builtProduct("martlet"))
        process.arguments = ["events"] + arguments
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, standardOutput: out, standardError: String(decoding: err, as: UTF8.self))
    }

    /// Runs a subcommand that must succeed and decodes what it printed.
    private func event<Event: Decodable>(_ arguments: [String], as: Event.Type = Event.self) throws -> Event {
        let run = try martlet(arguments)
        #expect(run.status == 0, "\(arguments): \(run.standardError)")
        return try JSONDecoder().decode(Event.self, from: run.standardOutput)
    }

    @Test("Each subcommand prints an event our types decode, with the flags' values")
    func subcommands() throws {
        let connect: WebSocketRequest = try event(["websocket-connect", "--connection-id", "Conn0000000000A=", "--header", "X-Tag=a", "--query", "key=k"])
        #expect(connect.requestContext.connectionId == "Conn0000000000A=" && connect.header("x-tag") == "a" && connect.queryStringParameters == ["key": "k"])

        let message: WebSocketRequest = try event(["websocket-message", "--route-key", "status", "--body", "hi", "--base64"])
        #expect(message.requestContext.routeKey == "status" && message.body == "aGk=" && message.isBase64Encoded)

        let disconnect: WebSocketRequest = try event(["websocket-disconnect", "--status-code", "1006", "--reason", "abnormal"])
        #expect(disconnect.requestContext.disconnectStatusCode == 1006 && disconnect.requestContext.disconnectReason == "abnormal")

        let http: HTTPRequest = try event(["http", "--route-key", "GET /jobs/{id}", "--path-parameter", "id=123", "--cookie", "a=b", "--query", "x=1"])
        #expect(http.rawPath == "/jobs/123" && http.pathParameters == ["id": "123"] && http.cookies == ["a=b"] && http.rawQueryString == "x=1")

        let sqs: SQSEvent = try event(["sqs", "--body", "one", "--body", "two", "--count", "3", "--attribute", "jobType=render"])
        #expect(sqs.records.count == 3 && sqs.records.first?.body == "one" && sqs.records.first?.messageAttributes["jobType"]?.stringValue == "render")
    }

    @Test("A malformed NAME=VALUE, or options API Gateway could not have routed, exit non-zero naming the problem")
    func refusals() throws {
        let header = try martlet(["websocket-connect", "--header", "novalue"])
        #expect(header.status != 0 && header.standardOutput.isEmpty)
        #expect(header.standardError.contains("The value 'novalue' is invalid for '--header <header>': expected NAME=VALUE"))

        let path = try martlet(["http", "--route-key", "GET /jobs/{id}", "--path", "/uploads"])
        #expect(path.status != 0 && path.standardError.contains("the path '/uploads' does not match the route key 'GET /jobs/{id}'"))
    }
}
