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
    /// Writes the recorded metrics out (EMF lines) once an invocation has been answered.
    public let flush: @Sendable () -> Void

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

    /// Records one invocation that took `elapsed`.
    public func record(elapsed: Duration, failed: Bool) {
        invocations.increment()
        if failed { errors.increment() }
        if coldStart.take() { coldStarts.increment() }
        duration.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
