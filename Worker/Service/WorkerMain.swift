import Logging
import MartletAWS
import MartletJobs

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `martlet-worker` process: configuration from the environment, the health endpoint, the
/// queue loop, and SIGTERM/SIGINT as a graceful stop (a second signal stops at once).
public enum WorkerMain {
    public static func run(environment: [String: String]) async -> Int32 {
        let logger = Logger(label: "martlet.worker")
        let worker: JobWorker
        do {
            let configuration = try WorkerConfiguration(environment: environment)
            let aws = try AWSClient(environment: environment)
            worker = try JobWorker(configuration: configuration, aws: aws, catalog: try ModelCatalog.fromEnvironment(environment), logger: logger)
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
        let health = HealthServer(port: worker.configuration.healthPort, status: worker.status, logger: logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await health.run() }
                group.addTask { try await worker.run() }
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
