import AsyncHTTPClient
import Foundation
import Logging
import MartletAWS
import MartletRuntime
import NIOCore
import NIOFoundationCompat
import Synchronization

/// Everything `martlet local` runs, from template.yaml: the AWS endpoint with the template's queues,
/// tables and buckets; a process pool per function; the HTTP and WebSocket APIs; the workers.
public final class LocalStack: Sendable {
    public struct Options: Sendable {
        public var templatePath: String
        /// State and objects go here; nil keeps state in memory (objects in a temporary folder).
        public var dataFolder: String?
        public var host = "127.0.0.1"
        public var endpointPort = 4566
        public var httpPort = 3000
        public var webSocketPort = 3001
        /// The `bootstrap` every function runs, and the worker executable.
        public var bootstrap: String
        public var worker: String?
        public var workers = 1
        /// Keys clients may use (given to the functions as `CLIENT_KEYS`).
        public var clientKeys: [String] = ["local-dev-key"]
        public var parameterOverrides: [String: String] = [:]
        public var region = "us-east-1"
        /// The console's port (the web demo and live view); nil serves none.
        public var consolePort: Int?
        /// The folder the console serves (the web demo).
        public var staticFolder: String?
        /// Extra variables for every function and worker.
        public var environment: [String: String] = [:]

        public init(templatePath: String, bootstrap: String) {
            self.templatePath = templatePath
            self.bootstrap = bootstrap
        }
    }

    /// Where everything listens, once started.
    public struct Addresses: Sendable {
        public var endpoint: String
        public var httpAPI: String
        public var webSocket: String
        public var management: String
        /// The web demo and live view, when served.
        public var console: String?
    }

    public let options: Options
    let logger: Logger
    let printLine: @Sendable (String) -> Void
    private let pools = Mutex<[String: FunctionPool]>([:])
    /// The worker processes by index: pid, status and health port.
    private let workerSlots = Mutex<[Int: WorkerSlot]>([:])

    struct WorkerSlot: Sendable {
        var pid: Int32?
        var status: String
        var healthPort: Int
    }
    public let warnings = Mutex<[String]>([])
    /// The metrics the functions and workers write (their EMF lines are taken in here, not printed).
    public let metrics = MetricsCollector()

    public init(options: Options, logger: Logger, printLine: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.logger = logger
        self.printLine = printLine
    }

    /// Per-function counts, for the live view.
    public var functionStatistics: [String: FunctionPool.Statistics] { pools.withLock { $0.mapValues(\.statistics) } }

    /// Starts everything, reports the addresses, and runs until cancelled or until a service fails;
    /// then stops in order: the gateways and the console (delivering `$disconnect` while functions
    /// still run), the workers (SIGTERM: they hand their jobs back), the functions, the endpoint.
    public func run(onReady: @escaping @Sendable (Addresses) -> Void = { _ in }) async throws {
        let template = try CloudFormationTemplate(contentsOf: options.templatePath)
        let temporary = options.dataFolder == nil ? NSTemporaryDirectory() + "martlet-local-\(UUID().uuidString)" : nil
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        let folder = options.dataFolder ?? temporary!
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let database = try SQLiteDatabase(path: options.dataFolder.map { $0 + "/state.sqlite" })
        let credentials = LocalCredentials.default
        let endpoint = try LocalEndpoint(database: database, objectsFolder: folder + "/s3", credentials: credentials, region: options.region, logger: logger)
        let started = ContinuousClock.now

        let (failures, failed) = AsyncStream.makeStream(of: String.self)
        var services = Services(failed: failed)
        do {
            let endpointURL = try await services.start(.endpoint, "AWS endpoint") { ready in
                try await endpoint.run(host: self.options.host, port: self.options.endpointPort) { ready($0) }
            }
            var resolver = TemplateResolver(template: template, parameterOverrides: options.parameterOverrides, region: options.region) { [weak self] warning in
                self?.warn(warning)
            }
            let wsPort = try Self.freePortIfZero(options.webSocketPort)
            let application = try await LocalApplication.build(
                template: template, resolver: &resolver, endpoint: endpoint, endpointURL: endpointURL,
                managementURL: "http://\(options.host):\(wsPort)", options: options, warn: { [weak self] in self?.warn($0) }
            )
            // Functions.
            var functionPools: [String: FunctionPool] = [:]
            for function in application.functions {
                let prefix = "[\(function.configuration.name)] "
                let pool = FunctionPool(
                    configuration: function.configuration, maxEnvironments: function.maxEnvironments, logger: logger,
                    printLine: { [printLine, metrics] line in
                        if !metrics.ingest(line) { printLine(prefix + line) }
                    }
                )
                functionPools[function.configuration.name] = pool
                services.add(.functions) { await pool.run() }
            }
            pools.withLock { $0 = functionPools }
            let invoke: FunctionInvocation = { [functionPools] name, event, integrationTimeout, streamTo in
                guard let pool = functionPools[name] else { return nil }
                // Each request starts a trace, as API Gateway and Lambda's front end do.
                let request = RuntimeEnvironment.Request(event: event, timeout: pool.configuration.timeout, traceID: TraceHeader.make())
                // A streamed response is bounded by the function's timeout, not the integration's.
                let integrationTimeout = streamTo == nil ? integrationTimeout : max(integrationTimeout, pool.configuration.timeout + .seconds(1))
                return await withTaskGroup(of: InvocationReport?.self) { group in
                    group.addTask { await pool.invoke(request, streamTo: streamTo) }
                    group.addTask {
                        try? await Task.sleep(for: integrationTimeout)
                        return nil
                    }
                    let first = await group.next() ?? nil
                    group.cancelAll()
                    return first
                }
            }
            // Workers.
            if let worker = options.worker, let environment = application.workerEnvironment, options.workers > 0 {
                for index in 1...options.workers {
                    services.add(.workers) { await self.superviseWorker(index, command: worker, environment: environment) }
                }
            }
            // Gateways.
            let http = HTTPAPIGateway(routes: application.httpRoutes, cors: application.cors, logger: logger, invoke: invoke)
            let httpURL = try await services.start(.gateways, "HTTP API") { ready in
                try await HTTPServer(host: self.options.host, port: self.options.httpPort, maxBodySize: 10 * 1024 * 1024, logger: self.logger) { await http.answer($0) }
                    .run { ready($0) }
            }
            var webSocketURL = ""
            if let webSocket = application.webSocket {
                let gateway = WebSocketGateway(configuration: webSocket, verifier: endpoint.verifier, logger: logger, invoke: invoke)
                webSocketURL = try await services.start(.gateways, "WebSocket API") { ready in
                    try await gateway.run(host: self.options.host, port: wsPort) { ready($0) }
                }.replacingOccurrences(of: "http://", with: "ws://")
            }
            // The console: the web demo and the live view.
            var consoleURL: String?
            if let consolePort = options.consolePort {
                let console = Console(
                    staticFolder: options.staticFolder,
                    configuration: .init(httpAPI: httpURL, webSocket: webSocketURL, endpoint: endpointURL, key: options.clientKeys.first ?? ""),
                    metrics: { [metrics] in metrics.snapshot() }
                ) { [endpoint] in await self.state(endpoint: endpoint, since: started) }
                consoleURL = try await services.start(.gateways, "console") { ready in
                    try await HTTPServer(host: self.options.host, port: consolePort, maxBodySize: 1024, logger: self.logger) { await console.answer($0) }
                        .run { ready($0) }
                }
            }
            onReady(
                Addresses(endpoint: endpointURL, httpAPI: httpURL, webSocket: webSocketURL, management: "http://\(options.host):\(wsPort)", console: consoleURL)
            )
            var iterator = failures.makeAsyncIterator()
            let failure = await withTaskCancellationHandler {
                await iterator.next()
            } onCancel: {
                failed.finish()
            }
            await services.stop()
            if let failure { throw LocalError(description: failure) }
        } catch {
            await services.stop()
            throw error
        }
    }

    /// What the console's live view shows.
    func state(endpoint: LocalEndpoint, since started: ContinuousClock.Instant) async -> ConsoleState {
        let functions = functionStatistics.sorted { $0.key < $1.key }.map { name, statistics in
            ConsoleState.Function(
                name: name, invocations: statistics.invocations, coldStarts: statistics.coldStarts, errors: statistics.errors,
                environments: statistics.environments, busy: statistics.busy, queued: statistics.queued
            )
        }
        var workers: [ConsoleState.Worker] = []
        for (index, slot) in workerSlots.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            var worker = ConsoleState.Worker(id: "local-worker-\(index)", pid: slot.pid, status: slot.status, ready: false, jobs: [])
            if slot.status == "running", let health = await Self.health(port: slot.healthPort) {
                worker.ready = health.status == "ready"
                worker.status = health.status == "warming" ? "starting" : health.status == "stopping" ? "stopping" : "running"
                worker.jobs = health.jobs.sorted { $0.key < $1.key }.map { .init(jobId: $0.key, model: $0.value.model, progress: $0.value.progress) }
            }
            workers.append(worker)
        }
        let duration = ContinuousClock.now - started
        return ConsoleState(
            uptimeSeconds: Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18, functions: functions,
            queues: (try? endpoint.sqs.statistics()) ?? [], workers: workers
        )
    }

    /// A worker's own account of itself, from its health endpoint.
    struct WorkerHealth: Decodable {
        struct Job: Decodable {
            var model: String
            var progress: Int
        }

        var status: String
        var jobs: [String: Job]
    }

    static func health(port: Int) async -> WorkerHealth? {
        guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/healthz"), timeout: .milliseconds(500)),
            let body = try? await response.body.collect(upTo: 1 << 20)
        else { return nil }
        return try? JSONDecoder().decode(WorkerHealth.self, from: Data(buffer: body))
    }

    private func warn(_ message: String) {
        let fresh = warnings.withLock { list -> Bool in
            if list.contains(message) { return false }
            list.append(message)
            return true
        }
        if fresh { printLine("[template] warning: \(message)") }
    }

    /// Runs one worker process, restarting it if it dies, until cancelled (then SIGTERM).
    private func superviseWorker(_ index: Int, command: String, environment: [String: String]) async {
        var environment = environment
        environment["WORKER_ID"] = "local-worker-\(index)"
        let prefix = "[worker-\(index)] "
        while !Task.isCancelled {
            // A port of its own for its health endpoint, which the live view reads.
            let healthPort = (try? Self.freePortIfZero(0)) ?? 0
            environment["HEALTH_PORT"] = String(healthPort)
            do {
                let process = try RuntimeProcess.spawn(
                    command: [command], environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                    workingDirectory: FileManager.default.currentDirectoryPath, output: .lines { [printLine, metrics] line in
                        if !metrics.ingest(line) { printLine(prefix + line) }
                    }, onExit: { _ in }
                )
                workerSlots.withLock { $0[index] = WorkerSlot(pid: process.id, status: "running", healthPort: healthPort) }
                _ = await withTaskCancellationHandler {
                    await process.waitForExit()
                } onCancel: {
                    // SIGTERM: the worker hands its jobs back within its stop timeout.
                    Task { await process.terminate(grace: .seconds(10)) }
                }
            } catch {
                printLine(prefix + "cannot start the worker: \(error)")
            }
            if Task.isCancelled { return }
            workerSlots.withLock { $0[index] = WorkerSlot(pid: nil, status: "restarting", healthPort: healthPort) }
            printLine(prefix + "exited; restarting in 1 s")
            try? await Task.sleep(for: .seconds(1))
        }
    }

    static func freePortIfZero(_ port: Int) throws -> Int {
        guard port == 0 else { return port }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
