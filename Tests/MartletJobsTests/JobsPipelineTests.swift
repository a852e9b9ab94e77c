import AsyncHTTPClient
import Foundation
import Functions
import Logging
import MartletAWS
import MartletJobs
import MartletLocal
import MartletRuntime
import MartletTestSupport
import NIOCore
import Testing

@testable import MartletWorker

/// The jobs pipeline on the local AWS endpoint: the real HTTP handlers, the real worker (in this
/// process, or as `martlet-worker` processes for the chaos tests), the demo model.
@Suite("Jobs end to end")
struct JobsPipelineTests {
    static let key = "test-key-ada"
    static let otherKey = "test-key-bob"

    /// A local endpoint with the application's queue (and its dead-letter queue), tables and bucket.
    struct Stack {
        var url: String
        var aws: AWSClient
        var environment: [String: String]
        var dlqURL: String
        /// Where the functions' and workers' metrics go.
        var metrics = JobMetrics()

        var service: JobService {
            get throws {
                try JobService(
                    configuration: try ApplicationConfiguration(environment: environment), aws: aws, keys: ClientKeys(keys: [key, otherKey]),
                    logger: Logger(label: "test"), metrics: metrics
                )
            }
        }
    }

    func withStack<R: Sendable>(maxAttempts: Int = 3, maxJobsInFlight: Int = 4, _ body: (Stack) async throws -> R) async throws -> R {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-jobs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try await withLocalEndpoint(database: try SQLiteDatabase(path: folder + "/state.sqlite"), objectsFolder: folder + "/s3") { url, _ in
            let aws = AWSClient(
                configuration: AWSConfiguration(region: "us-east-1", endpointURL: url, retry: RetryPolicy(maxAttempts: 1)),
                credentials: StaticCredentialProvider(Credentials(accessKeyID: "test", secretAccessKey: "test"))
            )
            let sqs = SQSClient(aws)
            let dlq = try await sqs.createQueue(named: "jobs-dlq")
            let dlqArn = try await sqs.queueAttributes(queueURL: dlq, names: ["QueueArn"])["QueueArn"]!
            let queue = try await sqs.createQueue(
                named: "jobs", attributes: ["RedrivePolicy": #"{"deadLetterTargetArn":"\#(dlqArn)","maxReceiveCount":"\#(maxAttempts)"}"#]
            )
            try await DynamoDBClient(aws).createTable("jobs", partitionKey: "jobId")
            try await DynamoDBClient(aws).createTable("connections", partitionKey: "connectionId")
            try await S3Client(aws).createBucket("artifacts")
            let environment = [
                "JOBS_TABLE": "jobs", "CONNECTIONS_TABLE": "connections", "JOBS_QUEUE_URL": queue, "BUCKET": "artifacts",
                "CLIENT_KEYS": "\(Self.key),\(Self.otherKey)", "MAX_JOBS_IN_FLIGHT": String(maxJobsInFlight), "MAX_ATTEMPTS": String(maxAttempts),
                "AWS_ENDPOINT_URL": url, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "VISIBILITY_TIMEOUT": "12", "HEALTH_PORT": "0", "STOP_TIMEOUT": "2", "WORK_FOLDER": folder, "POLL_WAIT_SECONDS": "1",
            ]
            return try await body(Stack(url: url, aws: aws, environment: environment, dlqURL: dlq))
        }
    }

    /// Runs an in-process worker while `body` runs.
    func withWorker<R: Sendable>(_ stack: Stack, id: String = "worker-1", _ body: () async throws -> R) async throws -> R {
        var environment = stack.environment
        environment["WORKER_ID"] = id
        let worker = try JobWorker(
            configuration: try WorkerConfiguration(environment: environment), aws: stack.aws, catalog: try ModelCatalog.fromEnvironment(environment),
            logger: Logger(label: "worker"), metrics: stack.metrics
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await worker.run() }
            defer {
                worker.stop()
            }
            return try await body()
        }
    }

    /// Calls the HTTP API handler as API Gateway would.
    func http(_ stack: Stack, _ method: String, _ routeKey: String, path: String, parameters: [String: String]? = nil, body: String? = nil, key: String? = key)
        async throws -> (status: Int, json: [String: JSONValue])
    {
        let handler = JobsHTTPHandler(service: try stack.service)
        let request = HTTPRequest(
            routeKey: routeKey, rawPath: path, headers: key.map { ["x-api-key": $0] } ?? [:], pathParameters: parameters,
            requestContext: .init(
                accountId: "000000000000", apiId: "local", domainName: "localhost", domainPrefix: "localhost",
                http: .init(method: method, path: path, sourceIp: "127.0.0.1", userAgent: "test"), requestId: UUID().uuidString, routeKey: routeKey,
                stage: "$default", time: "", timeEpoch: 0
            ),
            body: body
        )
        let response = try await handler.handle(request, context: .forTesting())
        let json = try JSONDecoder().decode([String: JSONValue].self, from: Data((response.body ?? "{}").utf8))
        return (response.statusCode, json)
    }

    func submit(_ stack: Stack, _ body: String, key: String = key) async throws -> (status: Int, json: [String: JSONValue]) {
        try await http(stack, "POST", "POST /jobs", path: "/jobs", body: body, key: key)
    }

    func jobId(_ json: [String: JSONValue]) -> String {
        if case .string(let id)? = json["jobId"] { return id }
        return ""
    }

    /// Polls the job until it is in a final state (or `timeout` passes).
    func waitForEnd(_ stack: Stack, _ id: String, timeout: Duration = .seconds(30)) async throws -> Job {
        let service = try stack.service
        let deadline = ContinuousClock.now + timeout
        while true {
            let job = try await service.jobs.job(id)!
            if job.state.isTerminal || ContinuousClock.now > deadline { return job }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test("Submit → the worker runs the demo model → SUCCEEDED with a valid WAV the owner (only) can download")
    func happyPath() async throws {
        try await withStack { stack in
            try await withWorker(stack) {
                let submitted = try await submit(stack, #"{"model":"demo","parameters":{"prompt":"a calm sea","seconds":1,"seed":7}}"#)
                #expect(submitted.status == 202)
                let id = jobId(submitted.json)
                let job = try await waitForEnd(stack, id)
                #expect(job.state == .succeeded)
                #expect(job.progress == 100 && job.attempts == 1)
                let status = try await http(stack, "GET", "GET /jobs/{id}", path: "/jobs/\(id)", parameters: ["id": id])
                #expect(status.status == 200 && status.json["state"] == .string("SUCCEEDED"))
                let result = try await http(stack, "GET", "GET /jobs/{id}/result", path: "/jobs/\(id)/result", parameters: ["id": id])
                guard case .string(let url)? = result.json["url"] else { Issue.record("no result URL: \(result)"); return }
                print("result URL", url)
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
                let bytes = try await response.body.collect(upTo: 16 << 20)
                #expect(response.status.code == 200)
                #expect(String(decoding: bytes.readableBytesView.prefix(4), as: UTF8.self) == "RIFF")
                #expect(String(decoding: bytes.readableBytesView.dropFirst(8).prefix(4), as: UTF8.self) == "WAVE")
                let stranger = try await http(stack, "GET", "GET /jobs/{id}/result", path: "/jobs/\(id)/result", parameters: ["id": id], key: Self.otherKey)
                #expect(stranger.status == 404)
                let anonymous = try await http(stack, "GET", "GET /jobs/{id}", path: "/jobs/\(id)", parameters: ["id": id], key: nil)
                #expect(anonymous.status == 401)
                let wrong = try await http(stack, "GET", "GET /jobs/{id}", path: "/jobs/\(id)", parameters: ["id": id], key: "nope")
                #expect(wrong.status == 403)
            }
        }
    }

    @Test("An idempotency key makes a resubmission return the same job; bad requests get 400 with a reason")
    func idempotencyAndValidation() async throws {
        try await withStack { stack in
            let first = try await submit(stack, #"{"model":"demo","parameters":{"prompt":"x"},"idempotencyKey":"abc"}"#)
            let second = try await submit(stack, #"{"model":"demo","parameters":{"prompt":"x"},"idempotencyKey":"abc"}"#)
            #expect(first.status == 202 && second.status == 200)
            #expect(jobId(first.json) == jobId(second.json) && second.json["duplicate"] == .bool(true))
            let other = try await submit(stack, #"{"model":"demo","parameters":{"prompt":"x"},"idempotencyKey":"abc"}"#, key: Self.otherKey)
            #expect(jobId(other.json) != jobId(first.json))
            let bad = try await submit(stack, #"{"parameters":{}}"#)
            #expect(bad.status == 400 && bad.json["code"] == .string("InvalidRequest"))
            let notJSON = try await submit(stack, "not json")
            #expect(notJSON.status == 400)
            let foreignInput = try await submit(stack, #"{"model":"demo","inputKey":"inputs/someone-else/x"}"#)
            #expect(foreignInput.status == 400)
        }
    }

    @Test("Back-pressure: a client over its jobs-in-flight limit gets 429; a finished job frees its slot")
    func backPressure() async throws {
        try await withStack(maxJobsInFlight: 1) { stack in
            let first = try await submit(stack, #"{"model":"noop"}"#)
            #expect(first.status == 202)
            let second = try await submit(stack, #"{"model":"noop"}"#)
            #expect(second.status == 429 && second.json["code"] == .string("TooManyJobs"))
            try await withWorker(stack) {
                #expect(try await waitForEnd(stack, jobId(first.json)).state == .succeeded)
                let third = try await submit(stack, #"{"model":"noop"}"#)
                #expect(third.status == 202)
                #expect(try await waitForEnd(stack, jobId(third.json)).state == .succeeded)
                let owner = try stack.service.keys.owner(forKey: Self.key)!
                #expect(try await stack.service.jobs.jobsInFlight(owner: owner) == 0, "every finished job gave its slot back")
            }
        }
    }

    @Test("Cancel stops a running job at its next progress step; no result is stored")
    func cancel() async throws {
        try await withStack { stack in
            try await withWorker(stack) {
                let submitted = try await submit(stack, #"{"model":"demo","parameters":{"prompt":"long","seconds":1,"stepMilliseconds":300}}"#)
                let id = jobId(submitted.json)
                let service = try stack.service
                while try await service.jobs.job(id)?.state != .running { try await Task.sleep(for: .milliseconds(20)) }
                let owner = service.keys.owner(forKey: Self.key)!
                _ = try await service.cancel(id, owner: owner)
                try await Task.sleep(for: .seconds(1))
                let job = try await service.jobs.job(id)!
                #expect(job.state == .cancelled && job.resultKey == nil)
                #expect(job.progress < 100)
                #expect(try await service.jobs.jobsInFlight(owner: owner) == 0)
            }
        }
    }

    @Test("A model that always fails: FAILED with its reason after the configured attempts, and the message in the dead-letter queue")
    func failingModel() async throws {
        try await withStack(maxAttempts: 2) { stack in
            try await withWorker(stack) {
                let submitted = try await submit(stack, #"{"model":"demo","parameters":{"prompt":"x","failWith":"GPU fell over"}}"#)
                let job = try await waitForEnd(stack, jobId(submitted.json))
                #expect(job.state == .failed && job.error == "GPU fell over" && job.attempts == 2)
                #expect(try await stack.service.jobs.jobsInFlight(owner: stack.service.keys.owner(forKey: Self.key)!) == 0)
                var dead: [SQSMessage] = []
                let deadline = ContinuousClock.now + .seconds(15)
                while dead.isEmpty, ContinuousClock.now < deadline {
                    dead = try await SQSClient(stack.aws).receiveMessages(queueURL: stack.dlqURL, maxMessages: 1, waitTime: 1)
                }
                #expect(dead.first?.body.contains(jobId(submitted.json)) == true)
            }
        }
    }

    @Test("A duplicate delivery of a job's message produces one result")
    func duplicateDelivery() async throws {
        try await withStack { stack in
            let submitted = try await submit(stack, #"{"model":"demo","parameters":{"prompt":"twice","seconds":0.5}}"#)
            let id = jobId(submitted.json)
            try await SQSClient(stack.aws).sendMessage(queueURL: stack.environment["JOBS_QUEUE_URL"]!, body: #"{"jobId":"\#(id)"}"#)
            try await withWorker(stack, id: "worker-a") {
                try await withWorker(stack, id: "worker-b") {
                    let job = try await waitForEnd(stack, id)
                    #expect(job.state == .succeeded && job.attempts == 1)
                    try await Task.sleep(for: .seconds(1))
                    let owner = try stack.service.keys.owner(forKey: Self.key)!
                    let xml = try await S3Listing.list(stack, prefix: "results/\(owner)/\(id)/")
                    #expect(xml.components(separatedBy: "<Key>").count - 1 == 1, "exactly one result object: \(xml)")
                }
            }
        }
    }
}
