import ArgumentParser
import Foundation
import MartletLocal

/// `martlet events`: sample events to edit and pass to `martlet invoke --event`.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print a sample event, as API Gateway or SQS would send it, for editing and `martlet invoke --event`.",
        discussion: "Ids, timestamps and checksums are fresh on every run; the JSON keys are sorted.",
        subcommands: [WebSocketConnect.self, WebSocketMessage.self, WebSocketDisconnect.self, HTTP.self, SQS.self]
    )
}

extension EventsCommand {
    /// The options every WebSocket event shares.
    struct WebSocketAPIOptions: ParsableArguments {
        @Option(name: .customLong("connection-id"), help: "The connection id (default: a fresh one, like L0SM9cOFvHcCIhw=).")
        var connectionID: String?
        @Option(help: "The API's stage.") var stage = "prod"
        @Option(help: "The API's domain name; an execute-api domain's first label is the API id.")
        var domain = SampleEvents.WebSocketAPI.defaultDomainName

        var api: SampleEvents.WebSocketAPI { .init(connectionID: connectionID, stage: stage, domainName: domain) }
    }

    struct WebSocketConnect: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "websocket-connect", abstract: "A WebSocket $connect event.")

        @OptionGroup var webSocket: WebSocketAPIOptions
        @Option(name: .customLong("header"), help: "An upgrade request header, NAME=VALUE (repeatable; replaces a sample one).", transform: pair)
        var headers: [NameValue] = []
        @Option(name: .customLong("query"), help: "A query parameter, NAME=VALUE (repeatable).", transform: pair)
        var query: [NameValue] = []

        func run() throws {
            try printEvent(SampleEvents.webSocketConnect(.init(api: webSocket.api, headers: headers, query: query)))
        }
    }

    struct WebSocketMessage: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "websocket-message", abstract: "A WebSocket message event on a route.")

        @OptionGroup var webSocket: WebSocketAPIOptions
        @Option(name: .customLong("route-key"), help: "The route the message selected.") var routeKey = "submit"
        @Option(help: "The message (default: {\"action\": ROUTE-KEY}, with a sample job for submit).") var body: String?
        @Flag(help: "Send the body base64-encoded, as a binary frame arrives.") var base64 = false

        func run() throws {
            try printEvent(SampleEvents.webSocketMessage(.init(api: webSocket.api, routeKey: routeKey, body: body, isBase64Encoded: base64)))
        }
    }

    struct WebSocketDisconnect: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "websocket-disconnect", abstract: "A WebSocket $disconnect event.")

        @OptionGroup var webSocket: WebSocketAPIOptions
        @Option(name: .customLong("status-code"), help: "The close code.") var statusCode = 1000
        @Option(help: "The close reason.") var reason = ""

        func run() throws {
            try printEvent(SampleEvents.webSocketDisconnect(.init(api: webSocket.api, statusCode: statusCode, reason: reason)))
        }
    }

    struct HTTP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "http", abstract: "An HTTP API request (payload format 2.0).",
            discussion: "Path parameters come from matching --path to --route-key; without --path, the route key's template is filled in."
        )

        @Option(help: "The method (default: the route key's, else POST).") var method: String?
        @Option(help: "The request path (default: /jobs, or the route key's template filled in).") var path: String?
        @Option(name: .customLong("route-key"), help: "The matched route, e.g. \"GET /jobs/{id}\" (default: \"METHOD PATH\").")
        var routeKey: String?
        @Option(name: .customLong("path-parameter"), help: "A path parameter, NAME=VALUE (repeatable).", transform: pair)
        var pathParameters: [NameValue] = []
        @Option(name: .customLong("query"), help: "A query parameter, NAME=VALUE (repeatable).", transform: pair)
        var query: [NameValue] = []
        @Option(name: .customLong("header"), help: "A header, NAME=VALUE (repeatable; replaces a sample one).", transform: pair)
        var headers: [NameValue] = []
        @Option(name: .customLong("cookie"), help: "A cookie, NAME=VALUE (repeatable).", transform: pair)
        var cookies: [NameValue] = []
        @Option(help: "The body (default: a sample job for POST, PUT and PATCH; none otherwise).") var body: String?
        @Flag(help: "Send the body base64-encoded, as API Gateway does for binary content.") var base64 = false
        @Option(help: "The API's domain name.") var domain = SampleEvents.HTTPOptions.defaultDomainName

        func run() throws {
            let options = SampleEvents.HTTPOptions(
                method: method, path: path, routeKey: routeKey, pathParameters: pathParameters, query: query, headers: headers,
                cookies: cookies, body: body, isBase64Encoded: base64, domainName: domain
            )
            try printEvent(SampleEvents.http(options))
        }
    }

    struct SQS: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "sqs", abstract: "An SQS batch from an event source mapping.")

        @Option(name: .customLong("body"), help: "A message body (repeatable: one record each).") var bodies: [String] = []
        @Option(help: "The number of records (default: one per --body, or 1); extra ones carry a sample job message.") var count: Int?
        @Option(name: .customLong("queue-arn"), help: "The queue's ARN.") var queueARN = SampleEvents.SQSOptions.defaultQueueARN
        @Option(name: .customLong("attribute"), help: "A string message attribute, NAME=VALUE (repeatable).", transform: pair)
        var attributes: [NameValue] = []

        func run() throws {
            let options = SampleEvents.SQSOptions(bodies: bodies, count: count, queueARN: queueARN, attributes: attributes)
            try printEvent(SampleEvents.sqs(options))
        }
    }
}

/// Reads a `NAME=VALUE` option, so a malformed one is refused naming its flag.
private func pair(_ text: String) throws -> NameValue {
    do { return try NameValue(parsing: text) } catch { throw ValidationError(error.description) }
}

private func printEvent(_ event: some Encodable) throws {
    print(try SampleEvents.json(event))
}
