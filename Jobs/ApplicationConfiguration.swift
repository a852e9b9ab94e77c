/// The application's configuration, read once from the environment the template (or `martlet local`) sets.
///
/// Variables:
/// - `JOBS_TABLE`, `CONNECTIONS_TABLE`: DynamoDB tables.
/// - `JOBS_QUEUE_URL`: the SQS queue the workers consume.
/// - `BUCKET`: inputs and results.
/// - `WEBSOCKET_ENDPOINT`: the `@connections` management endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
/// - `CLIENT_KEYS` (comma-separated, or `{"keys": [...]}`) or `CLIENT_KEYS_SECRET_ARN` (a Secrets Manager secret holding the JSON form).
/// - `MAX_JOBS_IN_FLIGHT`: per-client jobs queued or running at once (default 4).
/// - `UPLOAD_MAX_BYTES`: the largest input upload (default 100 MiB); `RESULT_URL_SECONDS`: how long download URLs live (default 900).
public struct ApplicationConfiguration: Sendable {
    public var jobsTable: String
    public var connectionsTable: String
    public var queueURL: String
    public var bucket: String
    public var webSocketEndpoint: String?
    public var clientKeys: String?
    public var clientKeysSecretARN: String?
    public var maxJobsInFlight: Int
    public var uploadMaxBytes: Int
    public var resultURLSeconds: Int

    public init(
        jobsTable: String, connectionsTable: String, queueURL: String, bucket: String, webSocketEndpoint: String? = nil, clientKeys: String? = nil,
        clientKeysSecretARN: String? = nil, maxJobsInFlight: Int = 4, uploadMaxBytes: Int = 100 << 20, resultURLSeconds: Int = 900
    ) {
        self.jobsTable = jobsTable
        self.connectionsTable = connectionsTable
        self.queueURL = queueURL
        self.bucket = bucket
        self.webSocketEndpoint = webSocketEndpoint
        self.clientKeys = clientKeys
        self.clientKeysSecretARN = clientKeysSecretARN
        self.maxJobsInFlight = maxJobsInFlight
        self.uploadMaxBytes = uploadMaxBytes
        self.resultURLSeconds = resultURLSeconds
    }

    /// Reads the variables above; a missing required one is an error naming it.
    public init(environment: [String: String]) throws(ConfigurationError) {
        let variables = EnvironmentReader(environment)
        self.init(
            jobsTable: try variables.required("JOBS_TABLE"), connectionsTable: try variables.required("CONNECTIONS_TABLE"),
            queueURL: try variables.required("JOBS_QUEUE_URL"), bucket: try variables.required("BUCKET"),
            webSocketEndpoint: variables.optional("WEBSOCKET_ENDPOINT"), clientKeys: variables.optional("CLIENT_KEYS"),
            clientKeysSecretARN: variables.optional("CLIENT_KEYS_SECRET_ARN"),
            maxJobsInFlight: try variables.number("MAX_JOBS_IN_FLIGHT", default: 4, in: 1...1000),
            uploadMaxBytes: try variables.number("UPLOAD_MAX_BYTES", default: 100 << 20, in: 1...(5 << 30)),
            resultURLSeconds: try variables.number("RESULT_URL_SECONDS", default: 900, in: 1...604_800)
        )
    }
}

/// Reads configuration variables, with errors that name the variable.
public struct EnvironmentReader: Sendable {
    public let environment: [String: String]

    public init(_ environment: [String: String]) { self.environment = environment }

    /// A variable that must be set and not empty.
    public func required(_ name: String) throws(ConfigurationError) -> String {
        guard let value = environment[name], !value.isEmpty else { throw ConfigurationError(message: "\(name) is not set") }
        return value
    }

    /// A variable's value, nil when unset or empty.
    public func optional(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }

    /// A whole number in `range`, `value` when unset.
    public func number(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let text = optional(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError(message: "\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not \(text)")
        }
        return number
    }
}

/// A configuration variable is missing or invalid.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
