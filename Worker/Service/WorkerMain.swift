import CoreMetrics
import Logging
import MartletAWS
import MartletJobs
import MartletRuntime
import NIOPosix
import NIOCore
import Synchronization

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `martlet-worker` process: configuration from the environment, the health endpoint, the
/// queue loop, and SIGTERM/SIGINT as a graceful stop (a second signal stops at once).
public enum WorkerMain {
    public static func run(environment: [String: String]) async -> Int32 {
        let logger = Logger(label: "martlet.worker")
        // Metrics as EMF lines on standard output (the task's log driver takes them to CloudWatch),
        // every 10 s and at the end; Prometheus text on the health endpoint's /metrics.
        let metrics = environment["MARTLET_METRICS"]?.lowercased() == "off" ? nil : EMFMetricsFactory(namespace: MetricCatalog.namespace)
        if let metrics { MetricsSystem.bootstrap(metrics) }
        defer { metrics?.flush() }
        let worker: JobWorker
        let executor: EventLoopTaskExecutor
        do {
            let configuration = try WorkerConfiguration(environment: environment)
            // A worker's own work is I/O (models compute on threads of their own or in processes):
            // one event loop per job slot, up to the cores, and the worker's tasks run on a loop.
            if environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil {
                NIOSingletons.groupLoopCountSuggestion = min(configuration.slots, System.coreCount)
            }
            executor = EventLoopTaskExecutor(MultiThreadedEventLoopGroup.singleton.next())
            let aws = try AWSClient(environment: environment)
            let flushes = metrics.map { MetricFlushes(metrics: $0) }
            worker = try JobWorker(
                configuration: configuration, aws: aws, catalog: try ModelCatalog.fromEnvironment(environment), logger: logger,
                taskExecutor: executor
            ) { flushes?.afterJob() }
        } catch {
            logger.critical("Cannot start the worker", metadata: ["error": "\(error)"])
            return 2
        }
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let signals = [SIGTERM, SIGINT].map { signal in
            let source = DispatchSource.makeSignalSource(signal: signal)
            source.setEventHandler {
                if worker.status.snapshot.status == "stopping" { exit(128 + signal) }
                worker.stop()
            }
            source.resume()
            return source
        }
        defer { for source in signals { source.cancel() } }
        let health = HealthServer(port: worker.configuration.healthPort, status: worker.status, metrics: metrics, logger: logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await health.run() }
                if let metrics {
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: .seconds(10))
                            metrics.flush()
                        }
                    }
                }
                group.addTask(executorPreference: executor) { try await worker.run() }
                // The worker's run ends after a stop; then the health endpoint goes too.
                try await group.next()
                group.cancelAll()
            }
            return 0
        } catch {
            logger.critical("Worker failed", metadata: ["error": "\(error)"])
            return 1
        }
    }
}

/// Writes the worker's metrics soon after each job (live charts follow the work) but at most once
/// a second: under load, a flush per job cost more than the job's own bookkeeping.
final class MetricFlushes: Sendable {
    static let interval = Duration.seconds(1)
    let metrics: EMFMetricsFactory
    private let state = Mutex<(last: ContinuousClock.Instant, pending: Bool)>((.now - MetricFlushes.interval, false))

    init(metrics: EMFMetricsFactory) { self.metrics = metrics }

    func afterJob() {
        let now = ContinuousClock.now
        let wait: Duration? = state.withLock { state in
            if state.pending { return nil }
            if now - state.last >= Self.interval {
                state.last = now
                return .zero
            }
            state.pending = true
            return state.last + Self.interval - now
        }
        guard let wait else { return }
        if wait == .zero { return metrics.flush() }
        Task {
            try? await Task.sleep(for: wait)
            self.state.withLock { $0 = (.now, false) }
            self.metrics.flush()
        }
    }
}
