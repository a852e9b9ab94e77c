import MartletJobs

/// What the application's code expects of its deployment — handlers and the routes each serves,
/// the environment each reads, the tables, queue and bucket — so a check can hold template.yaml
/// to it (`martlet contract` prints it; `scripts/lib/check_contract.py` compares).
public enum ApplicationContract {
    /// The variables every route handler reads (`ApplicationConfiguration`).
    static let common = ["JOBS_TABLE", "CONNECTIONS_TABLE", "JOBS_QUEUE_URL", "BUCKET"]
    /// Where client keys come from: one of these.
    static let clientKeys = ["CLIENT_KEYS", "CLIENT_KEYS_SECRET_ARN"]

    /// WebSocket handlers and their route keys.
    public static let webSocketHandlers: [String: [String]] = [
        "connect": ["$connect"],
        "disconnect": ["$disconnect"],
        "message": MessageHandler.routeKeys,
    ]

    /// HTTP handlers and the route each serves (all through `JobsHTTPHandler`).
    public static let httpHandlers: [String: String] = [
        "submitJob": "POST /jobs", "getJob": "GET /jobs/{id}", "createUpload": "POST /uploads", "getResult": "GET /jobs/{id}/result",
    ]

    public struct Handler: Encodable, Sendable {
        public var webSocketRoutes: [String]?
        /// Its answer is the route's response: its WebSocket routes must be two-way (a `$default` route response).
        public var answersOnRoute: Bool?
        public var httpRoutes: [String]?
        /// Variables the handler needs.
        public var environment: [String]
        /// Needs at least one of these.
        public var environmentOneOf: [String]?
    }

    public struct Table: Encodable, Sendable {
        public var environment: String
        public var partitionKey: String
        public var ttl: String
    }

    public struct Document: Encodable, Sendable {
        public var handlers: [String: Handler]
        public var tables: [String: Table]
        public var queues: [String: [String: String]]
        public var buckets: [String: [String: [String]]]
        public var worker: [String: [String]]
        /// The metrics the code emits (namespace `Martlet`), which the template's alarms and dashboard may name.
        public var metrics: [MetricCatalog.Metric]
    }

    /// The contract as JSON-ready values.
    public static var document: Document {
        var handlers: [String: Handler] = [:]
        handlers["connect"] = Handler(webSocketRoutes: ["$connect"], environment: common, environmentOneOf: clientKeys)
        handlers["disconnect"] = Handler(webSocketRoutes: ["$disconnect"], environment: common)
        handlers["message"] = Handler(webSocketRoutes: MessageHandler.routeKeys, answersOnRoute: true, environment: common + ["WEBSOCKET_ENDPOINT"])
        for (name, route) in httpHandlers {
            handlers[name] = Handler(httpRoutes: [route], environment: common, environmentOneOf: clientKeys)
        }
        return Document(
            handlers: handlers,
            tables: [
                "jobs": Table(environment: "JOBS_TABLE", partitionKey: "jobId", ttl: "expiresAt"),
                "connections": Table(environment: "CONNECTIONS_TABLE", partitionKey: "connectionId", ttl: "expiresAt"),
            ],
            queues: ["jobs": ["environment": "JOBS_QUEUE_URL", "deadLetterQueue": "required"]],
            buckets: ["artifacts": ["environment": ["BUCKET"], "prefixes": ["inputs/", "results/"]]],
            worker: ["environment": ["JOBS_TABLE", "JOBS_QUEUE_URL", "BUCKET", "WEBSOCKET_ENDPOINT"]],
            metrics: MetricCatalog.all
        )
    }
}
