import ArgumentParser
import Dispatch
import Foundation
import Synchronization

/// Runs `operation` in a task that SIGINT and SIGTERM cancel, so that runtime processes and servers
/// are stopped on the way out instead of being left behind; then exits as a signalled process would.
func runCancellingOnSignals<Result: Sendable>(_ operation: @escaping @Sendable () async throws -> Result) async throws -> Result {
    let received = ReceivedSignal()
    let task = Task { try await operation() }
    let sources = [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            received.number.store(number, ordering: .relaxed)
            task.cancel()
        }
        source.resume()
        return source
    }
    defer { sources.forEach { $0.cancel() } }
    let result = await task.result
    let number = received.number.load(ordering: .relaxed)
    if number != 0 { throw ExitCode(128 + number) }
    return try result.get()
}

private final class ReceivedSignal: Sendable {
    let number = Atomic<Int32>(0)
}
