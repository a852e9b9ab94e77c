import AsyncHTTPClient
import Foundation
import Logging
import MartletClient
import MartletJobs
import MartletLocal
import MartletTestSupport
import NIOCore
import NIOFoundationCompat
import Synchronization
import Testing

/// `martlet client`'s engine and the console, against the whole application under `LocalStack`:
/// the repository's template.yaml, the real bootstrap and a real worker process.
@Suite("Client and console on the local stack", .serialized)
struct ClientTests {
    static let key = "client-test-key"
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// Every line the stack printed (function and worker logs, with their prefixes).
    final class Printed: Sendable {
        private let state = Mutex<[String]>([])
        func record(_ line: String) { state.withLock { $0.append(line) } }
        var lines: [String] { state.withLock { $0 } }
    }

    func withApplication<R: Sendable>(printed: Printed = Printed(), _ body: (LocalStack.Addresses) async throws -> R) async throws -> R {
        var options = LocalStack.Options(templatePath: Self.repository + "/template.yaml", bootstrap: builtProduct("bootstrap"))
        options.worker = builtProduct("martlet-worker")
        options.workers = 1
        options.endpointPort = 0
        options.httpPort = 0
        options.webSocketPort = 0
        options.consolePort = 0
        options.staticFolder = Self.repository + "/Demo/web"
        options.clientKeys = [Self.key]
        let stack = LocalStack(options: options, logger: Logger(label: "test")) { printed.record($0) }
        return try await withRunningStack(stack) { addresses in try await body(addresses) }
    }

    func client(_ addresses: LocalStack.Addresses, key: String = key) -> JobClient {
        JobClient(configuration: JobClientConfiguration(httpURL: addresses.httpAPI, webSocketURL: addresses.webSocket, key: key))
    }

    func temporaryFolder() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-client-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    func get(_ url: String) async throws -> (status: Int, headers: [String: String], body: Data) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return (Int(response.status.code), headers, Data(buffer: try await response.body.collect(upTo: 16 << 20)))
    }

    @Test("A job with an uploaded input completes; the saved file equals the stored result object")
    func jobCompletes() async throws {
        try await withApplication { addresses in
            let folder = try temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let input = folder + "/input.wav"
            try Data("RIFF0000WAVEfmt input".utf8).write(to: URL(fileURLWithPath: input))
            let events = Mutex<[JobClientEvent]>([])
            let outcome = try await client(addresses).run(
                model: "demo", parameters: ["prompt": .string("a calm sea"), "seconds": .number(1)], input: input, output: folder,
                timeout: .seconds(60), onEvent: { event in events.withLock { $0.append(event) } }
            )
            let saved = try Data(contentsOf: URL(fileURLWithPath: outcome.path))
            let stored = try await get(outcome.url)
            #expect(stored.status == 200)
            #expect(saved == stored.body)
            #expect(saved.starts(with: Data("RIFF".utf8)) && outcome.contentType == "audio/wav")
            let seen = events.withLock { $0 }
            #expect(seen.contains { if case .uploaded(let key) = $0 { key.hasPrefix("inputs/") } else { false } })
            #expect(seen.contains { if case .update(.succeeded, 100, _) = $0 { true } else { false } })
        }
    }

    @Test("A connection killed mid-job is reopened and the job resumed by its status")
    func reconnects() async throws {
        try await withApplication { addresses in
            let folder = try temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let connections = Mutex<[WebSocketConnection]>([])
            let killed = Mutex(false)
            let events = Mutex<[JobClientEvent]>([])
            let outcome = try await client(addresses).run(
                model: "demo", parameters: ["prompt": .string("rain"), "seconds": .number(1), "stepMilliseconds": .number(200)],
                output: folder + "/result.wav", timeout: .seconds(60),
                onConnection: { connection in connections.withLock { $0.append(connection) } },
                onEvent: { event in
                    events.withLock { $0.append(event) }
                    // Kill the first connection once the job runs, without a closing handshake.
                    if case .update(.running, let progress, _) = event, progress > 0, progress < 50 {
                        let first = killed.withLock { done -> Bool in
                            defer { done = true }
                            return !done
                        }
                        if first { connections.withLock { $0.first }?.abort() }
                    }
                }
            )
            let seen = events.withLock { $0 }
            #expect(killed.withLock { $0 })
            #expect(seen.contains { if case .connectionLost = $0 { true } else { false } })
            #expect(seen.contains(.connected(reconnect: true)))
            #expect(connections.withLock { $0.count } >= 2)
            let saved = try Data(contentsOf: URL(fileURLWithPath: folder + "/result.wav"))
            #expect(saved == (try await get(outcome.url)).body)
        }
    }

    @Test("A wrong key is refused with 403, a missing one with 401; a failing job and bad parameters end with their messages")
    func refusals() async throws {
        try await withApplication { addresses in
            let folder = try temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            await #expect(throws: JobClientError.keyRefused(status: 403, message: "The client key is not valid")) {
                try await client(addresses, key: "wrong").run(model: "demo", parameters: ["prompt": .string("x")], output: folder)
            }
            do {
                _ = try await client(addresses).run(
                    model: "demo", parameters: ["prompt": .string("x"), "failWith": .string("out of memory")], output: folder, timeout: .seconds(60)
                )
                Issue.record("a failing job succeeded")
            } catch let error as JobClientError {
                if case .jobFailed(_, let message) = error { #expect(message == "out of memory") } else { Issue.record("unexpected \(error)") }
                #expect(error.exitCode == 1)
            }
            await #expect(throws: JobClientError.self) {
                try await client(addresses).run(model: "Not A Model!", parameters: [:], output: folder)
            }
            let unreachable = JobClient(configuration: JobClientConfiguration(httpURL: addresses.httpAPI, webSocketURL: "ws://127.0.0.1:1", key: Self.key))
            do {
                _ = try await unreachable.run(model: "demo", parameters: ["prompt": .string("x")], output: folder)
                Issue.record("an unreachable WebSocket API was reached")
            } catch let error as JobClientError {
                if case .unreachable = error {} else { Issue.record("unexpected \(error)") }
            }
        }
    }

    @Test("One trace id follows a job: the function's log, the worker's log (from the queue message), the result object's metadata")
    func traceFollowsJob() async throws {
        let printed = Printed()
        try await withApplication(printed: printed) { addresses in
            let folder = try temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let outcome = try await client(addresses).run(model: "demo", parameters: ["prompt": .string("trace me"), "seconds": .number(0.5)], output: folder)
            try await Task.sleep(for: .milliseconds(300))  // the last log lines
            let lines = printed.lines.filter { $0.contains(outcome.jobId) }
            func traceID(_ line: String) -> String? {
                guard let range = line.range(of: "trace.id=") else { return nil }
                return String(line[range.upperBound...].prefix { !$0.isWhitespace })
            }
            let queued = try #require(lines.first { $0.hasPrefix("[MessageFunction]") && $0.contains("Job queued") }, "\(lines)")
            let trace = try #require(traceID(queued))
            #expect(trace.hasPrefix("1-") && trace.count == 35, "an X-Ray trace id: \(trace)")
            let started = try #require(lines.first { $0.hasPrefix("[worker-1]") && $0.contains("Job started") }, "\(lines)")
            #expect(traceID(started) == trace)
            let succeeded = try #require(lines.first { $0.hasPrefix("[worker-1]") && $0.contains("Job succeeded") })
            #expect(traceID(succeeded) == trace)
            let result = try await get(outcome.url)
            #expect(result.headers["x-amz-meta-trace-id"] == trace)
        }
    }

    @Test("The console serves the web demo, the addresses, and a live view of functions, queues and workers; nothing outside its folder")
    func console() async throws {
        try await withApplication { addresses in
            let console = try #require(addresses.console)
            let page = try await get(console + "/")
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(String(decoding: page.body, as: UTF8.self).contains("<html"))
            let script = try await get(console + "/app.js")
            #expect(script.status == 200 && script.headers["content-type"] == "text/javascript; charset=utf-8")
            for path in ["/../Package.swift", "/%2e%2e/Package.swift", "/missing.js", "/.hidden"] {
                #expect(try await get(console + path).status == 404, "\(path)")
            }
            let configuration = try JSONDecoder().decode(Console.Configuration.self, from: try await get(console + "/_martlet/config").body)
            #expect(configuration == Console.Configuration(httpAPI: addresses.httpAPI, webSocket: addresses.webSocket, endpoint: addresses.endpoint, key: Self.key))

            // Run one job, then the live view counts it.
            let folder = try temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            _ = try await client(addresses).run(model: "noop", parameters: [:], output: folder, timeout: .seconds(60))
            let state = try JSONDecoder().decode(ConsoleState.self, from: try await get(console + "/_martlet/state").body)
            let connect = try #require(state.functions.first { $0.name == "ConnectFunction" })
            #expect(connect.invocations >= 1 && connect.coldStarts >= 1)
            #expect(state.queues.map(\.name).contains("JobsQueue"))
            #expect(state.workers.count == 1 && state.workers[0].pid != nil)
            #expect(state.workers[0].status == "running" || state.workers[0].status == "starting")

            // The functions' and the worker's EMF lines became the console's metrics.
            let metrics = try JSONDecoder().decode(MetricsCollector.Snapshot.self, from: try await get(console + "/_martlet/metrics").body)
            let names = Set(metrics.series.map(\.name))
            for name in ["Invocations", "Duration", "ColdStarts", "JobsSubmitted", "JobsStarted", "JobsSucceeded", "QueueWait", "EndToEndTime"] {
                #expect(names.contains(name), "\(name) in \(names.sorted())")
            }
            let submitted = metrics.series.filter { $0.name == "JobsSubmitted" }.flatMap(\.points).reduce(0) { $0 + $1.sum }
            #expect(submitted == 1)
        }
    }
}
