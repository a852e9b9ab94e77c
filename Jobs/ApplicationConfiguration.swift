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
        func required(_ name: String) throws(ConfigurationError) -> String {
            guard let value = environment[name], !value.isEmpty else { throw ConfigurationError(message: "\(name) is not set") }
            return value
        }
        func number(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            guard let text = environment[name], !text.isEmpty else { return value }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError(message: "\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not \(text)")
            }
            return number
        }
        self.init(
            jobsTable: try required("JOBS_TABLE"), connectionsTable: try required("CONNECTIONS_TABLE"), queueURL: try required("JOBS_QUEUE_URL"),
            bucket: try required("BUCKET"), webSocketEndpoint: environment["WEBSOCKET_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 },
            clientKeys: environment["CLIENT_KEYS"].flatMap { $0.isEmpty ? nil : $0 },
            clientKeysSecretARN: environment["CLIENT_KEYS_SECRET_ARN"].flatMap { $0.isEmpty ? nil : $0 },
            maxJobsInFlight: try number("MAX_JOBS_IN_FLIGHT", default: 4, in: 1...1000), uploadMaxBytes: try number("UPLOAD_MAX_BYTES", default: 100 << 20, in: 1...(5 << 30)),
            resultURLSeconds: try number("RESULT_URL_SECONDS", default: 900, in: 1...604_800)
        )
    }
}

/// A configuration variable is missing or invalid.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
