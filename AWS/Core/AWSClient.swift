import Logging
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the service clients share: configuration, credentials, a transport, signing, retries and
/// error decoding.
///
/// ```swift
/// let aws = try AWSClient(environment: ProcessInfo.processInfo.environment)
/// let queue = SQSClient(aws)
/// ```
public struct AWSClient: Sendable {
    public let configuration: AWSConfiguration
    public let credentials: any CredentialProvider
    let transport: any HTTPTransport
    let logger: Logger
    /// How long one attempt may take, unless an operation says otherwise.
    public var timeout: Duration = .seconds(60)

    public init(
        configuration: AWSConfiguration, credentials: any CredentialProvider, transport: any HTTPTransport = HTTP1Transport.shared,
        logger: Logger = Logger(label: "martlet.aws", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        self.credentials = credentials
        self.transport = transport
        self.logger = logger
    }

    /// Configuration and the default credential chain from environment variables, as Lambda,
    /// ECS and a laptop provide them.
    public init(
        environment: [String: String], transport: any HTTPTransport = HTTP1Transport.shared,
        logger: Logger = Logger(label: "martlet.aws", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws(AWSClientError) {
        var environment = environment
        if environment["AWS_REGION"].nonEmpty == nil, environment["AWS_DEFAULT_REGION"].nonEmpty == nil,
            let region = SharedConfigFiles(environment: environment).value("region")
        {
            environment["AWS_REGION"] = region
        }
        self.init(
            configuration: try AWSConfiguration(environment: environment),
            credentials: CredentialProviderChain.default(environment: environment, transport: transport),
            transport: transport, logger: logger
        )
    }

    /// How a service encodes its errors.
    enum ErrorFormat {
        /// `{"__type": "…#Code", "message": "…"}` (SQS, DynamoDB, the management API).
        case json
        /// `<Error><Code>…</Code><Message>…</Message></Error>` (S3).
        case xml
    }

    /// Signs and sends a request, retrying throttling, 5xx and connection failures with backoff;
    /// a 2xx/3xx response is returned with its body unread, an error answer is thrown as ``AWSServiceError``.
    func send(
        _ service: ServiceID, method: String, url: RequestURL, headers: [(name: String, value: String)] = [],
        body: RequestBody = .empty, payload: SigV4Signer.Payload, errors: ErrorFormat, timeout: Duration? = nil
    ) async throws -> AWSHTTPResponse {
        var attempt = 1
        while true {
            let credentials = try await self.credentials.credentials()
            let signer = SigV4Signer(credentials: credentials, region: configuration.region, service: service.signingName)
            var signed = signer.sign(method: method, url: url, headers: headers, payload: payload, at: .now)
            signed.append(("Content-Length", String(body.length)))
            // Unsigned, as the SDKs send it: X-Ray joins the call to the trace the task is serving.
            if let trace = AWSTrace.header { signed.append(("X-Amzn-Trace-Id", trace)) }
            let request = AWSHTTPRequest(method: method, url: url, headers: signed, body: body)
            let canRetry = attempt < configuration.retry.maxAttempts && body.isReplayable
            let response: AWSHTTPResponse
            do {
                response = try await transport.send(request, timeout: timeout ?? self.timeout)
            } catch {
                if error is CancellationError { throw error }
                guard canRetry else { throw AWSClientError.transport("\(method) \(url.host): \(error)") }
                logger.debug("Retrying after a transport error", metadata: ["aws.attempt": "\(attempt)", "error": "\(error)"])
                try await Task.sleep(for: configuration.retry.delay(beforeRetry: attempt))
                attempt += 1
                continue
            }
            if response.status < 400 { return response }
            let error = await Self.serviceError(service, response, format: errors)
            guard error.isRetryable, canRetry else { throw error }
            logger.debug("Retrying after a service error", metadata: ["aws.attempt": "\(attempt)", "aws.error.code": "\(error.code)"])
            try await Task.sleep(for: configuration.retry.delay(beforeRetry: attempt))
            attempt += 1
        }
    }

    /// Calls an operation of a JSON-protocol service (`X-Amz-Target: Prefix.Operation`).
    func callJSON<Output: Decodable>(
        _ service: ServiceID, target: String, input: some Encodable, as output: Output.Type, timeout: Duration? = nil,
        jsonVersion: String = "1.0", extraHeaders: [(name: String, value: String)] = []
    ) async throws -> Output {
        let body = try JSONEncoder().encode(input)
        let bytes = [UInt8](body)
        let response = try await send(
            service, method: "POST", url: configuration.endpoint(for: service),
            headers: [("Content-Type", "application/x-amz-json-\(jsonVersion)"), ("X-Amz-Target", target)] + extraHeaders,
            body: .bytes(ByteBuffer(bytes: bytes)), payload: .bytes(bytes), errors: .json, timeout: timeout
        )
        let data = try await response.collect(upTo: 64 * 1024 * 1024)
        if Output.self == EmptyOutput.self { return EmptyOutput() as! Output }
        do {
            return try JSONDecoder().decode(Output.self, from: Data(data.readableBytesView))
        } catch {
            throw AWSClientError.invalidResponse("\(target): cannot read the response: \(error)")
        }
    }

    /// Calls any operation of a JSON-protocol service with a raw JSON body; returns the raw answer.
    /// For operations this library has no typed call for.
    public func callJSON(_ service: ServiceID, target: String, body: String) async throws -> ByteBuffer {
        try await callJSON(service, target: target, bytes: Array(body.utf8))
    }

    /// Calls an operation of a JSON-protocol service with a JSON body already written; returns the raw answer.
    func callJSON(
        _ service: ServiceID, target: String, bytes: [UInt8], timeout: Duration? = nil, extraHeaders: [(name: String, value: String)] = []
    ) async throws -> ByteBuffer {
        let response = try await send(
            service, method: "POST", url: configuration.endpoint(for: service),
            headers: [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", target)] + extraHeaders,
            body: .bytes(ByteBuffer(bytes: bytes)), payload: .bytes(bytes), errors: .json, timeout: timeout
        )
        return try await response.collect(upTo: 64 * 1024 * 1024)
    }

    /// Reads an error answer into a typed error.
    static func serviceError(_ service: ServiceID, _ response: AWSHTTPResponse, format: ErrorFormat) async -> AWSServiceError {
        let body = (try? await response.collect(upTo: 1024 * 1024)) ?? ByteBuffer()
        let bytes = Array(body.readableBytesView)
        let requestID = response.header("x-amzn-RequestId") ?? response.header("x-amz-request-id")
        var code = "Http\(response.status)"
        var message = ""
        switch format {
        case .json:
            if let object = try? JSONDecoder().decode([String: JSONScalar].self, from: Data(bytes)) {
                if let type = object["__type"]?.string ?? object["code"]?.string ?? object["Code"]?.string {
                    code = String(type.split(separator: "#").last ?? Substring(type))
                }
                message = object["message"]?.string ?? object["Message"]?.string ?? ""
            }
            if let header = response.header("x-amzn-ErrorType"), code.hasPrefix("Http") {
                code = String(header.split(separator: ":").first ?? Substring(header))
            }
        case .xml:
            let text = String(decoding: bytes, as: UTF8.self)
            if let value = XMLText.firstElement("Code", in: text) { code = value }
            message = XMLText.firstElement("Message", in: text) ?? ""
        }
        if code.hasPrefix("Http") {
            // HEAD answers and some gateways have no body: name the status as S3 and API Gateway do.
            switch response.status {
            case 403: code = "Forbidden"
            case 404: code = "NotFound"
            case 410: code = "GoneException"
            case 413: code = "PayloadTooLargeException"
            case 429: code = "TooManyRequestsException"
            default: break
            }
        }
        if message.isEmpty { message = "HTTP \(response.status)" }
        return AWSServiceError(service: service.signingName, status: response.status, code: code, message: message, requestID: requestID, body: bytes)
    }
}

/// An operation without output fields.
struct EmptyOutput: Decodable, Sendable {}

/// A JSON value that is a string or anything else (only strings are read).
enum JSONScalar: Decodable {
    case string(String)
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = (try? container.decode(String.self)).map(JSONScalar.string) ?? .other
    }

    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}

/// The X-Ray trace header the current task serves: every AWS call made within
/// `AWSTrace.$header.withValue(…)` carries it as `X-Amzn-Trace-Id`.
public enum AWSTrace {
    @TaskLocal public static var header: String?

    /// The `Root=…` part of a trace header (the trace id), or the header itself.
    public static func rootID(_ header: String) -> String {
        for part in header.split(separator: ";") where part.hasPrefix("Root=") { return String(part.dropFirst(5)) }
        return header
    }
}
