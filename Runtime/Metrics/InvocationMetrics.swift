import CoreMetrics
import Synchronization

/// What the runtime records for every invocation, per function: `Invocations`, `Errors`,
/// `Duration` (ms) and `ColdStarts` (the process's first invocation), in the `Martlet` namespace.
public struct InvocationMetrics: Sendable {
    let invocations: Counter
    let errors: Counter
    let duration: Timer
    let coldStarts: Counter
    let coldStart = ColdStart()
    let schedule = FlushSchedule()
    /// Writes the recorded metrics out (EMF lines).
    public let flush: @Sendable () -> Void

    /// When to write: at once after a quiet second, else at most once a second (or every 100
    /// invocations), so a busy function writes one line a second instead of one per invocation.
    /// What is held when the environment is frozen goes out with its next invocation, under its own
    /// timestamp; it is lost only if Lambda ends the environment first (at most a second's worth).
    final class FlushSchedule: Sendable {
        static let interval: Duration = .seconds(1)
        static let maxHeld = 100
        private let state = Mutex<(last: ContinuousClock.Instant?, held: Int)>((nil, 0))

        /// Counts one invocation; true when it should write.
        func due() -> Bool {
            state.withLock { state in
                state.held += 1
                let now = ContinuousClock.now
                let quiet = state.last.map { now - $0 >= Self.interval } ?? true
                guard quiet || state.held >= Self.maxHeld else { return false }
                state.last = now
                state.held = 0
                return true
            }
        }
    }

    final class ColdStart: Sendable {
        private let pending = Mutex(true)
        /// True the first time only.
        func take() -> Bool { pending.withLock { value in defer { value = false }; return value } }
    }

    public init(functionName: String, factory: any MetricsFactory, flush: @escaping @Sendable () -> Void) {
        let dimensions = [("FunctionName", functionName)]
        invocations = Counter(label: "Invocations", dimensions: dimensions, factory: factory)
        errors = Counter(label: "Errors", dimensions: dimensions, factory: factory)
        duration = Timer(label: "Duration", dimensions: dimensions, factory: factory)
        coldStarts = Counter(label: "ColdStarts", dimensions: dimensions, factory: factory)
        self.flush = flush
    }

    /// Records an invocation and writes the metrics out when they are due (see ``FlushSchedule``).
    public func recordAndFlushIfDue(elapsed: Duration, failed: Bool) {
        record(elapsed: elapsed, failed: failed)
        if schedule.due() { flush() }
    }

    /// Records one invocation that took `elapsed`.
    public func record(elapsed: Duration, failed: Bool) {
        invocations.increment()
        if failed { errors.increment() }
        if coldStart.take() { coldStarts.increment() }
        duration.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
