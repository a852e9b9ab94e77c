import Logging
import MartletAWS
import Synchronization

/// Settled jobs' messages, deleted in batches (`DeleteMessageBatch`, up to 10): each is deleted at
/// most `delay` after it was handed in, with whatever else was handed in meanwhile, so a busy
/// worker makes one delete call for several jobs.
///
/// Deferring a delete is safe: until it happens the message stays hidden, and if the worker dies
/// first, the message comes back after its visibility timeout, finds its job finished, and is
/// dropped then (nothing runs twice).
final class MessageDeletions: Sendable {
    private let sqs: SQSClient
    private let queueURL: String
    private let delay: Duration
    private let logger: Logger
    private let taskExecutor: (any TaskExecutor)?
    private let state = Mutex(State())

    private struct State {
        var pending: [String] = []
        var flushScheduled = false
        var inFlight = 0
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    init(sqs: SQSClient, queueURL: String, delay: Duration = .milliseconds(50), logger: Logger, taskExecutor: (any TaskExecutor)?) {
        self.sqs = sqs
        self.queueURL = queueURL
        self.delay = delay
        self.logger = logger
        self.taskExecutor = taskExecutor
    }

    /// Deletes the message soon (at once when ten are waiting).
    func delete(_ receiptHandle: String) {
        enum Next { case nothing, schedule, send([String]) }
        let next: Next = state.withLock { state in
            state.pending.append(receiptHandle)
            if state.pending.count >= 10 {
                defer { state.pending.removeAll(keepingCapacity: true) }
                state.inFlight += 1
                return .send(state.pending)
            }
            if state.flushScheduled { return .nothing }
            state.flushScheduled = true
            return .schedule
        }
        switch next {
        case .nothing: break
        case .send(let batch):
            Task(executorPreference: taskExecutor) { await self.send(batch) }
        case .schedule:
            Task(executorPreference: taskExecutor) {
                try? await Task.sleep(for: self.delay)
                await self.flush()
            }
        }
    }

    /// Deletes everything handed in so far, and waits for every delete under way.
    func flush() async {
        let batches: [[String]] = state.withLock { state in
            state.flushScheduled = false
            defer { state.pending.removeAll(keepingCapacity: true) }
            let batches = stride(from: 0, to: state.pending.count, by: 10).map { Array(state.pending[$0..<min($0 + 10, state.pending.count)]) }
            state.inFlight += batches.count
            return batches
        }
        for batch in batches { await send(batch) }
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if state.inFlight == 0 { return true }
                state.drained.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func send(_ batch: [String]) async {
        do {
            for failure in try await sqs.deleteMessageBatch(queueURL: queueURL, receiptHandles: batch) {
                logger.warning("Could not delete a message", metadata: ["error": "\(failure.code): \(failure.message ?? "")"])
            }
        } catch {
            logger.warning("Could not delete messages", metadata: ["error": "\(error)", "messages": "\(batch.count)"])
        }
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.inFlight -= 1
            guard state.inFlight == 0 else { return [] }
            defer { state.drained = [] }
            return state.drained
        }
        for waiter in waiters { waiter.resume() }
    }
}
