/// The services this library talks to, with the names their endpoint variables use.
public struct ServiceID: Sendable, Hashable {
    /// The SigV4 signing name (`s3`, `sqs`, `dynamodb`, `execute-api`).
    public let signingName: String
    /// The suffix of `AWS_ENDPOINT_URL_<SERVICE>`.
    public let environmentName: String
    /// The hostname prefix of the default endpoint.
    let endpointPrefix: String

    public static let s3 = ServiceID(signingName: "s3", environmentName: "S3", endpointPrefix: "s3")
    public static let sqs = ServiceID(signingName: "sqs", environmentName: "SQS", endpointPrefix: "sqs")
    public static let dynamoDB = ServiceID(signingName: "dynamodb", environmentName: "DYNAMODB", endpointPrefix: "dynamodb")
    public static let secretsManager = ServiceID(signingName: "secretsmanager", environmentName: "SECRETS_MANAGER", endpointPrefix: "secretsmanager")
    public static let apiGatewayManagement = ServiceID(
        signingName: "execute-api", environmentName: "APIGATEWAYMANAGEMENTAPI", endpointPrefix: "execute-api"
    )
}

/// Where and how to reach AWS: region, endpoint overrides and retries, read once from the
/// environment at start-up.
///
/// Variables read by ``init(environment:)``:
/// - `AWS_REGION`, else `AWS_DEFAULT_REGION`: the region (required).
/// - `AWS_ENDPOINT_URL`: an endpoint for every service (the local emulator, LocalStack, moto).
/// - `AWS_ENDPOINT_URL_<SERVICE>` (`_S3`, `_SQS`, `_DYNAMODB`, `_SECRETS_MANAGER`, `_APIGATEWAYMANAGEMENTAPI`): one service's endpoint.
/// - `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`: ignore both.
/// - `AWS_MAX_ATTEMPTS`: attempts per call, first one included (default 3).
public struct AWSConfiguration: Sendable {
    public var region: String
    /// An endpoint for all services; a per-service one wins.
    public var endpointURL: String?
    /// Endpoints by ``ServiceID/environmentName``.
    public var serviceEndpointURLs: [String: String]
    public var retry: RetryPolicy

    public init(region: String, endpointURL: String? = nil, serviceEndpointURLs: [String: String] = [:], retry: RetryPolicy = RetryPolicy()) {
        self.region = region
        self.endpointURL = endpointURL
        self.serviceEndpointURLs = serviceEndpointURLs
        self.retry = retry
    }

    /// Reads the configuration from environment variables; throws when no region is set or a value is invalid.
    public init(environment: [String: String]) throws(AWSClientError) {
        guard let region = environment["AWS_REGION"].nonEmpty ?? environment["AWS_DEFAULT_REGION"].nonEmpty else {
            throw .missingRegion("no region: set AWS_REGION (Lambda and ECS set it) or AWS_DEFAULT_REGION")
        }
        var retry = RetryPolicy()
        if let attempts = environment["AWS_MAX_ATTEMPTS"].nonEmpty {
            guard let number = Int(attempts), number >= 1 else {
                throw .invalidArgument("AWS_MAX_ATTEMPTS must be a whole number of at least 1, not \(attempts)")
            }
            retry.maxAttempts = number
        }
        self.init(region: region, retry: retry)
        if environment["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]?.lowercased() != "true" {
            endpointURL = environment["AWS_ENDPOINT_URL"].nonEmpty
            for (name, value) in environment where name.hasPrefix("AWS_ENDPOINT_URL_") && !value.isEmpty {
                serviceEndpointURLs[String(name.dropFirst("AWS_ENDPOINT_URL_".count))] = value
            }
        }
        for url in [endpointURL].compactMap({ $0 }) + Array(serviceEndpointURLs.values) {
            guard RequestURL(string: url) != nil else { throw .invalidArgument("endpoint URL \(url) is not an http(s) URL") }
        }
    }

    /// The configured endpoint of a service, if one overrides AWS's.
    public func customEndpoint(for service: ServiceID) -> RequestURL? {
        (serviceEndpointURLs[service.environmentName] ?? endpointURL).flatMap(Self.parsedEndpoint)
    }

    /// Endpoint URLs already parsed: every call asks for its service's.
    private static let parsedEndpoints = SynchronizedDictionary<String, RequestURL>()

    private static func parsedEndpoint(_ text: String) -> RequestURL? {
        if let known = parsedEndpoints[text] { return known }
        guard let url = RequestURL(string: text) else { return nil }
        parsedEndpoints.insert(url, for: text, capacity: 64)
        return url
    }

    /// The endpoint to call: the override, else AWS's regional endpoint.
    public func endpoint(for service: ServiceID) -> RequestURL {
        if let custom = customEndpoint(for: service) { return custom }
        if service == .s3, region == "us-east-1" { return RequestURL(scheme: "https", host: "s3.amazonaws.com") }
        return RequestURL(scheme: "https", host: "\(service.endpointPrefix).\(region).\(Self.dnsSuffix(for: region))")
    }

    /// The DNS suffix of a region's partition.
    static func dnsSuffix(for region: String) -> String {
        if region.hasPrefix("cn-") { return "amazonaws.com.cn" }
        if region.hasPrefix("us-iso-") { return "c2s.ic.gov" }
        if region.hasPrefix("us-isob-") { return "sc2s.sgov.gov" }
        return "amazonaws.com"
    }
}

/// Retries of throttled and failed calls: capped exponential backoff with full jitter.
public struct RetryPolicy: Sendable {
    /// Attempts per call, the first one included.
    public var maxAttempts: Int
    /// The base delay; attempt `n` waits a random time up to `min(maxDelay, baseDelay × 2ⁿ)`.
    public var baseDelay: Duration
    public var maxDelay: Duration

    public init(maxAttempts: Int = 3, baseDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(20)) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The delay before retry number `retry` (1 for the first retry).
    public func delay(beforeRetry retry: Int) -> Duration {
        let ceiling = min(maxDelay, baseDelay * (1 << min(retry, 20)))
        let nanoseconds = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        return .nanoseconds(Int64.random(in: 0...max(0, nanoseconds)))
    }
}

extension Optional where Wrapped == String {
    var nonEmpty: String? {
        guard let value = self, !value.isEmpty else { return nil }
        return value
    }
}
