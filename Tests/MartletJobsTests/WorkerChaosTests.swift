import AsyncHTTPClient
import Foundation
import MartletAWS
import MartletJobs
import MartletTestSupport
import Testing

/// `martlet-worker` processes killed or stopped mid-job: nothing is lost and nothing runs twice to completion.
@Suite("Worker crashes and Spot stops")
struct WorkerChaosTests {
    let pipeline = JobsPipelineTests()

    /// Starts `martlet-worker` with the stack's environment; its logs go to a file in the work folder.
    func startWorker(_ stack: JobsPipelineTests.Stack, id: String, extra: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: builtProduct("martlet-worker"))
        var environment = stack.environment
        environment["WORKER_ID"] = id
        for (name, value) in extra { environment[name] = value }
        process.environment = environment
        let log = stack.environment["WORK_FOLDER"]! + "/\(id).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits for a process to exit without blocking a concurrency thread (two blocked threads would
    /// starve every other test of this process).
    func waitForExit(_ process: Process) async {
        while process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }

    func waitUntil(_ timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func resultCount(_ stack: JobsPipelineTests.Stack, owner: String, jobId: String) async throws -> Int {
        let xml = try await S3Listing.list(stack, prefix: "results/\(owner)/\(jobId)/")
        return xml.components(separatedBy: "<Key>").count - 1
    }

    @Test("SIGKILL a worker mid-job: another worker completes it, with exactly one result")
    func killedWorker() async throws {
        try await pipeline.withStack { stack in
            let service = try stack.service
            let owner = service.keys.owner(forKey: JobsPipelineTests.key)!
            let first = try startWorker(stack, id: "doomed", extra: ["VISIBILITY_TIMEOUT": "4"])
            let submitted = try await pipeline.submit(stack, #"{"model":"demo","parameters":{"prompt":"survive","seconds":1,"stepMilliseconds":300}}"#)
            let id = pipeline.jobId(submitted.json)
            try await waitUntil { (try await service.jobs.job(id)?.progress ?? 0) >= 20 }
            kill(first.processIdentifier, SIGKILL)
            await waitForExit(first)
            let second = try startWorker(stack, id: "rescuer", extra: ["VISIBILITY_TIMEOUT": "4"])
            defer { second.terminate(); second.waitUntilExit() }
            let job = try await pipeline.waitForEnd(stack, id, timeout: .seconds(30))
            #expect(job.state == .succeeded)
            #expect(job.workerId == "rescuer" && job.attempts == 2, "\(job)")
            #expect(try await resultCount(stack, owner: owner, jobId: id) == 1)
        }
    }

    @Test("SIGTERM mid-job past the stop timeout: the job is handed back at once and another worker completes it")
    func stoppedWorkerHandsBack() async throws {
        try await pipeline.withStack { stack in
            let service = try stack.service
            let first = try startWorker(stack, id: "spot", extra: ["STOP_TIMEOUT": "1"])
            let submitted = try await pipeline.submit(stack, #"{"model":"demo","parameters":{"prompt":"handed back","seconds":1,"stepMilliseconds":400}}"#)
            let id = pipeline.jobId(submitted.json)
            try await waitUntil { (try await service.jobs.job(id)?.progress ?? 0) >= 10 }
            let stoppedAt = ContinuousClock.now
            kill(first.processIdentifier, SIGTERM)
            await waitForExit(first)
            #expect(first.terminationStatus == 0)
            #expect(ContinuousClock.now - stoppedAt < .seconds(15), "stopped after the stop timeout, not after the job")
            let handedBack = try await service.jobs.job(id)!
            #expect(handedBack.state == .queued && handedBack.attempts == 0, "\(handedBack)")
            let second = try startWorker(stack, id: "on-demand")
            defer { second.terminate(); second.waitUntilExit() }
            let job = try await pipeline.waitForEnd(stack, id, timeout: .seconds(30))
            #expect(job.state == .succeeded && job.workerId == "on-demand" && job.attempts == 1)
        }
    }

    @Test("SIGTERM mid-job within the stop timeout: the worker finishes the job, then exits")
    func stoppedWorkerFinishes() async throws {
        try await pipeline.withStack { stack in
            let service = try stack.service
            let worker = try startWorker(stack, id: "graceful", extra: ["STOP_TIMEOUT": "30"])
            let submitted = try await pipeline.submit(stack, #"{"model":"demo","parameters":{"prompt":"finish me","seconds":1,"stepMilliseconds":100}}"#)
            let id = pipeline.jobId(submitted.json)
            try await waitUntil { try await service.jobs.job(id)?.state == .running }
            kill(worker.processIdentifier, SIGTERM)
            await waitForExit(worker)
            #expect(worker.terminationStatus == 0)
            let job = try await service.jobs.job(id)!
            #expect(job.state == .succeeded && job.attempts == 1)
        }
    }
}

/// A signed ListObjectsV2 through plain HTTP (the wire layer has no listing call).
enum S3Listing {
    static func list(_ stack: JobsPipelineTests.Stack, prefix: String) async throws -> String {
        let url = RequestURL(string: "\(stack.url)/artifacts?list-type=2&prefix=\(prefix)")!
        let signed = SigV4Signer(credentials: Credentials(accessKeyID: "test", secretAccessKey: "test"), region: "us-east-1", service: "s3")
            .sign(method: "GET", url: url, headers: [], payload: .unsigned, at: .now)
        var request = HTTPClientRequest(url: url.description)
        for (name, value) in signed where name.lowercased() != "host" { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return String(buffer: try await response.body.collect(upTo: 1 << 20))
    }
}
