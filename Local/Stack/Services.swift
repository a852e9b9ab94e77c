import NIOCore

/// The local stack's long-running services, started in stages and stopped stage by stage in a
/// fixed order, so that, for example, gateways still reach live functions while they close.
struct Services {
    enum Stage: Int, CaseIterable {
        case endpoint, functions, workers, gateways
    }

    private var tasks: [Stage: [Task<Void, Never>]] = [:]
    /// Where a service reports that it stopped on its own (a failure).
    let failed: AsyncStream<String>.Continuation

    init(failed: AsyncStream<String>.Continuation) { self.failed = failed }

    /// Runs a service that needs no address.
    mutating func add(_ stage: Stage, _ body: @escaping @Sendable () async -> Void) {
        tasks[stage, default: []].append(Task { await body() })
    }

    /// Runs a server and waits until it listens; returns its `http://host:port`.
    mutating func start(
        _ stage: Stage, _ name: String, _ body: @escaping @Sendable (@escaping @Sendable (SocketAddress) -> Void) async throws -> Void
    ) async throws -> String {
        let (addresses, listening) = AsyncStream.makeStream(of: Result<String, LocalError>.self)
        let failed = self.failed
        tasks[stage, default: []].append(Task {
            do {
                try await body { address in listening.yield(.success("http://\(address.ipAddress ?? "127.0.0.1"):\(address.port ?? 0)")) }
            } catch {
                listening.yield(.failure(LocalError(description: "\(name) did not start: \(error)")))
                if !Task.isCancelled { failed.yield("\(name) stopped: \(error)") }
            }
            listening.finish()
        })
        var iterator = addresses.makeAsyncIterator()
        guard let first = await iterator.next() else { throw LocalError(description: "\(name) did not start") }
        return try first.get()
    }

    /// Stops the gateways, then the workers, the functions and the endpoint, each stage finished
    /// before the next begins.
    func stop() async {
        for stage in Stage.allCases.reversed() {
            let running = tasks[stage] ?? []
            for task in running { task.cancel() }
            for task in running { await task.value }
        }
    }
}
