import MartletRuntime
import NIOCore
import NIOPosix
import Synchronization

/// One execution environment as the Runtime API sees it: invocations waiting to be delivered,
/// runtimes long-polling `/next`, and invocations in flight.
///
/// The invoking side calls ``invoke(_:)`` and awaits the outcome; the Runtime API server calls
/// ``next()``, ``respond(to:body:contentType:)``, ``reportError(for:body:errorType:)`` and
/// ``reportInitError(body:errorType:)``. A supervisor ends invocations with ``complete(_:with:)``
/// (timeouts) and ``close(_:)`` (a process exit).
public final class RuntimeEnvironment: Sendable {
    /// A request to run one invocation.
    public struct Request: Sendable {
        public var requestID: String
        public var event: ByteBuffer
        public var contentType: String
        public var timeout: Duration
        public var traceID: String?
        public var clientContext: String?
        public var cognitoIdentity: String?
        public var tenantID: String?

        public init(
            requestID: String = RequestID.make(), event: ByteBuffer, contentType: String = "application/json",
            timeout: Duration, traceID: String? = nil, clientContext: String? = nil, cognitoIdentity: String? = nil,
            tenantID: String? = nil
        ) {
            self.requestID = requestID
            self.event = event
            self.contentType = contentType
            self.timeout = timeout
            self.traceID = traceID
            self.clientContext = clientContext
            self.cognitoIdentity = cognitoIdentity
            self.tenantID = tenantID
        }
    }

    /// What a runtime's `next` receives.
    public struct Delivery: Sendable {
        public var metadata: InvocationMetadata
        public var event: ByteBuffer
        public var contentType: String
    }

    /// Whether a runtime is waiting for work.
    public enum Readiness: Sendable {
        /// A runtime is polling `/next`.
        case ready
        /// The runtime reported an init error.
        case initError(body: ByteBuffer, errorType: String?)
        /// The environment is closed (its process exited).
        case closed(InvocationOutcome?)
    }

    private struct Pending {
        var request: Request
        var continuation: CheckedContinuation<InvocationOutcome, Never>
    }

    private struct State {
        var queue: [Pending] = []
        var pollers: [(id: UInt64, continuation: CheckedContinuation<Delivery?, any Error>)] = []
        var inFlight: [String: CheckedContinuation<InvocationOutcome, Never>] = [:]
        var answered: Set<String> = []
        var answeredOrder: [String] = []
        var readinessWaiters: [(id: UInt64, continuation: CheckedContinuation<Readiness?, Never>)] = []
        var nextWaiterID: UInt64 = 0
        var initError: (body: ByteBuffer, errorType: String?)?
        var closedOutcome: InvocationOutcome??
        var nextPollerID: UInt64 = 0
        var firstPollAt: ContinuousClock.Instant?
        var invocationCount = 0

        mutating func remember(answered id: String) {
            answered.insert(id)
            answeredOrder.append(id)
            if answeredOrder.count > 1024 { answered.remove(answeredOrder.removeFirst()) }
        }
    }

    /// The function's name, as in `AWS_LAMBDA_FUNCTION_NAME`.
    public let functionName: String
    /// The ARN invocations carry.
    public let functionARN: String
    /// How many invocations the runtime may hold at once (`AWS_LAMBDA_MAX_CONCURRENCY`; 1 on standard Lambda).
    public let maxConcurrency: Int
    private let state = Mutex(State())

    public init(functionName: String, region: String = "us-east-1", accountID: String = "000000000000", maxConcurrency: Int = 1) {
        self.functionName = functionName
        self.functionARN = "arn:aws:lambda:\(region):\(accountID):function:\(functionName)"
        self.maxConcurrency = max(1, maxConcurrency)
    }

    // MARK: Invoking side

    /// Runs one invocation and waits for its outcome, however it ends.
    public func invoke(_ request: Request) async -> InvocationOutcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<InvocationOutcome, Never>) in
            enum Action { case deliver(CheckedContinuation<Delivery?, any Error>, Delivery), fail(InvocationOutcome), none }
            let action: Action = state.withLock { state in
                if let closed = state.closedOutcome { return .fail(closed ?? .platformError(Self.closedError)) }
                if let initError = state.initError { return .fail(.initError(body: initError.body, errorType: initError.errorType)) }
                state.invocationCount += 1
                if state.inFlight.count < maxConcurrency, !state.pollers.isEmpty {
                    let poller = state.pollers.removeFirst()
                    state.inFlight[request.requestID] = continuation
                    return .deliver(poller.continuation, delivery(for: request))
                }
                state.queue.append(Pending(request: request, continuation: continuation))
                return .none
            }
            switch action {
            case .deliver(let poller, let delivery): poller.resume(returning: delivery)
            case .fail(let outcome): continuation.resume(returning: outcome)
            case .none: break
            }
        }
    }

    /// Ends an invocation that is queued or in flight (a timeout, say); false if it had already ended.
    @discardableResult
    public func complete(_ requestID: String, with outcome: InvocationOutcome) -> Bool {
        let continuation: CheckedContinuation<InvocationOutcome, Never>? = state.withLock { state in
            if let continuation = state.inFlight.removeValue(forKey: requestID) {
                state.remember(answered: requestID)
                return continuation
            }
            if let index = state.queue.firstIndex(where: { $0.request.requestID == requestID }) {
                return state.queue.remove(at: index).continuation
            }
            return nil
        }
        continuation?.resume(returning: outcome)
        return continuation != nil
    }

    /// Closes the environment: every queued and in-flight invocation ends with `outcome(requestID)`,
    /// pollers are released, and later invocations fail at once.
    public func close(_ outcome: @Sendable (String) -> InvocationOutcome) {
        let (pending, inFlight, pollers, waiters) = state.withLock { state in
            let taken = (state.queue, state.inFlight, state.pollers, state.readinessWaiters)
            state.queue = []
            state.inFlight = [:]
            state.pollers = []
            state.readinessWaiters = []
            if state.closedOutcome == nil { state.closedOutcome = .some(nil) }
            return taken
        }
        for item in pending { item.continuation.resume(returning: outcome(item.request.requestID)) }
        for (id, continuation) in inFlight { continuation.resume(returning: outcome(id)) }
        for poller in pollers { poller.continuation.resume(returning: nil) }
        for waiter in waiters { waiter.continuation.resume(returning: .closed(nil)) }
    }

    /// Waits until a runtime polls `/next` with room for an invocation, reports an init error, or the
    /// environment closes; `nil` when the waiting task is cancelled.
    public func waitUntilReady() async -> Readiness? {
        await waitUntilReady(waiterID: newReadinessWaiterID())
    }

    private func newReadinessWaiterID() -> UInt64 {
        state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
    }

    private func waitUntilReady(waiterID: UInt64) async -> Readiness? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Readiness?, Never>) in
                let immediate: Readiness?? = state.withLock { state in
                    if let initError = state.initError { return .initError(body: initError.body, errorType: initError.errorType) }
                    if state.closedOutcome != nil { return .closed(nil) }
                    if !state.pollers.isEmpty, state.inFlight.count < maxConcurrency { return .ready }
                    if Task.isCancelled { return .some(nil) }
                    state.readinessWaiters.append((waiterID, continuation))
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            dropReadinessWaiter(waiterID)?.resume(returning: nil)
        }
    }

    /// Waits as `waitUntilReady()` does, for at most `timeout` (then nil), with a timer on an event
    /// loop rather than a second task.
    public func waitUntilReady(timeout: Duration) async -> Readiness? {
        let waiterID = newReadinessWaiterID()
        let expiry = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(timeout)) { [self] in
            self.dropReadinessWaiter(waiterID)?.resume(returning: nil)
        }
        defer { expiry.cancel() }
        return await waitUntilReady(waiterID: waiterID)
    }

    private func dropReadinessWaiter(_ waiterID: UInt64) -> CheckedContinuation<Readiness?, Never>? {
        state.withLock { state in
            state.readinessWaiters.firstIndex { $0.id == waiterID }.map { state.readinessWaiters.remove(at: $0).continuation }
        }
    }

    /// When the runtime first polled `/next`: the end of its init phase.
    public var firstPollAt: ContinuousClock.Instant? { state.withLock { $0.firstPollAt } }

    /// Invocations accepted so far.
    public var invocationCount: Int { state.withLock { $0.invocationCount } }

    /// Invocations in flight now.
    public var inFlightCount: Int { state.withLock { $0.inFlight.count } }

    // MARK: Runtime side

    /// `GET /runtime/invocation/next`: waits for an invocation; `nil` when the environment closes.
    public func next() async throws(RuntimeAPIFailure) -> Delivery? {
        let pollerID = state.withLock { state in
            state.nextPollerID += 1
            return state.nextPollerID
        }
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Delivery?, any Error>) in
                    enum Action { case deliver(Delivery), refuse(RuntimeAPIFailure), closed, wait }
                    var waiters: [(id: UInt64, continuation: CheckedContinuation<Readiness?, Never>)] = []
                    let action: Action = state.withLock { state in
                        if state.firstPollAt == nil { state.firstPollAt = .now }
                        if state.closedOutcome != nil { return .closed }
                        if state.inFlight.count >= maxConcurrency {
                            return .refuse(.invalidStateTransition(
                                "State transition from Running to Ready failed for runtime. Error: an invocation is already in progress"
                            ))
                        }
                        if !state.queue.isEmpty {
                            let pending = state.queue.removeFirst()
                            state.inFlight[pending.request.requestID] = pending.continuation
                            return .deliver(delivery(for: pending.request))
                        }
                        if Task.isCancelled { return .closed }
                        state.pollers.append((pollerID, continuation))
                        waiters = state.readinessWaiters
                        state.readinessWaiters = []
                        return .wait
                    }
                    for waiter in waiters { waiter.continuation.resume(returning: .ready) }
                    switch action {
                    case .deliver(let delivery): continuation.resume(returning: delivery)
                    case .refuse(let failure): continuation.resume(throwing: failure)
                    case .closed: continuation.resume(returning: nil)
                    case .wait: break
                    }
                }
            } onCancel: {
                let poller = state.withLock { state in
                    state.pollers.firstIndex { $0.id == pollerID }.map { state.pollers.remove(at: $0).continuation }
                }
                poller?.resume(returning: nil)
            }
        } catch let failure as RuntimeAPIFailure {
            throw failure
        } catch {
            return nil
        }
    }

    /// `POST /runtime/invocation/{id}/response`.
    public func respond(to requestID: String, body: ByteBuffer, contentType: String?) throws(RuntimeAPIFailure) {
        try finish(requestID, with: .success(body: body, contentType: contentType))
    }

    /// `POST /runtime/invocation/{id}/error`.
    public func reportError(for requestID: String, body: ByteBuffer, errorType: String?) throws(RuntimeAPIFailure) {
        try finish(requestID, with: .functionError(body: body, errorType: errorType))
    }

    /// Ends an in-flight invocation from the runtime side, refusing unknown or already-answered ids.
    public func finish(_ requestID: String, with outcome: InvocationOutcome) throws(RuntimeAPIFailure) {
        let result: Result<CheckedContinuation<InvocationOutcome, Never>, RuntimeAPIFailure> = state.withLock { state in
            if let continuation = state.inFlight.removeValue(forKey: requestID) {
                state.remember(answered: requestID)
                return .success(continuation)
            }
            if state.answered.contains(requestID) {
                return .failure(.invalidStateTransition(
                    "State transition from Ready to InvocationResponse failed for runtime. Error: invocation \(requestID) was already answered"
                ))
            }
            return .failure(.invalidRequestID)
        }
        try result.get().resume(returning: outcome)
    }

    /// `POST /runtime/init/error`: every queued invocation, and every later one, gets the init error.
    public func reportInitError(body: ByteBuffer, errorType: String?) {
        let (pending, waiters) = state.withLock { state in
            state.initError = (body, errorType)
            let taken = (state.queue, state.readinessWaiters)
            state.queue = []
            state.readinessWaiters = []
            return taken
        }
        for item in pending { item.continuation.resume(returning: .initError(body: body, errorType: errorType)) }
        for waiter in waiters { waiter.continuation.resume(returning: .initError(body: body, errorType: errorType)) }
    }

    private func delivery(for request: Request) -> Delivery {
        let deadline = WallClock.nowMilliseconds + Int64(request.timeout.milliseconds)
        return Delivery(
            metadata: InvocationMetadata(
                requestID: request.requestID, deadlineEpochMilliseconds: deadline, invokedFunctionARN: functionARN,
                traceID: request.traceID, clientContext: request.clientContext, cognitoIdentity: request.cognitoIdentity,
                tenantID: request.tenantID
            ),
            event: request.event,
            contentType: request.contentType
        )
    }

    private static let closedError = FunctionError(errorType: "Runtime.ExitError", errorMessage: "The execution environment has shut down")
}

/// A refusal of the Runtime API, with the status and body Lambda's Runtime API sends.
public struct RuntimeAPIFailure: Error, Sendable, Equatable {
    public let status: UInt
    public let errorType: String
    public let errorMessage: String

    public static let invalidRequestID = Self(status: 400, errorType: "InvalidRequestID", errorMessage: "Invalid request ID")
    public static func invalidStateTransition(_ message: String) -> Self {
        Self(status: 403, errorType: "InvalidStateTransition", errorMessage: message)
    }

    /// The JSON body: `{"errorMessage": …, "errorType": …}`.
    public var json: String { FunctionError(errorType: errorType, errorMessage: errorMessage).json }
}

/// AWS-style request ids: random version-4 UUIDs in lower case.
public enum RequestID {
    private static let digits = Array("0123456789abcdef".utf8)

    /// The generator's state: a random start, then one step per id (SplitMix64 over a counter).
    private static let state = Atomic<UInt64>({ var system = SystemRandomNumberGenerator(); return system.next() }())

    /// A random-looking (version 4) UUID in lowercase, as Lambda's request ids are, unique within
    /// the process and formatted in place. Every request of the emulator gets one (and blobs and
    /// messages their names), so it costs no system call: SplitMix64 over a counter that starts at a
    /// random value, which is a bijection, so no two ids of a process are equal. Not for secrets.
    public static func make() -> String {
        let step: UInt64 = 0x9E37_79B9_7F4A_7C15
        let base = state.wrappingAdd(2 &* step, ordering: .relaxed).oldValue
        var high = mix(base &+ step)
        var low = mix(base &+ 2 &* step)
        high = (high & ~0xF000) | 0x4000  // version 4
        low = (low & ~(0xC000 << 48)) | (0x8000 << 48)  // variant 10
        return String(unsafeUninitializedCapacity: 36) { output in
            var position = 0
            for index in 0..<16 {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    output[position] = UInt8(ascii: "-")
                    position += 1
                }
                let byte = index < 8 ? UInt8(truncatingIfNeeded: high >> UInt64(56 - index * 8)) : UInt8(truncatingIfNeeded: low >> UInt64(56 - (index - 8) * 8))
                output[position] = digits[Int(byte >> 4)]
                output[position + 1] = digits[Int(byte & 0x0F)]
                position += 2
            }
            return position
        }
    }

    /// SplitMix64's output function.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
