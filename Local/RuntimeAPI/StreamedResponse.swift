import MartletRuntime
import NIOCore
import Synchronization

/// A response the runtime streams (`Lambda-Runtime-Function-Response-Mode: streaming`): its chunks
/// as they arrive, ending normally, with the function error of its trailers, or with a platform
/// error (a timeout).
public final class StreamedResponse: Sendable {
    /// The runtime's `Content-Type` (for HTTP responses, Lambda's http-integration type).
    public let contentType: String?
    /// The chunks, in order; read once.
    public let chunks: AsyncThrowingStream<ByteBuffer, any Error>
    private let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let finished = Mutex(false)

    init(contentType: String?) {
        self.contentType = contentType
        (chunks, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
    }

    func yield(_ chunk: ByteBuffer) { continuation.yield(chunk) }

    /// Ends the stream (with `error` when it failed); false if it had already ended.
    @discardableResult
    func finish(_ error: StreamedResponseError? = nil) -> Bool {
        let first = finished.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return false }
        continuation.finish(throwing: error)
        return true
    }

    var isFinished: Bool { finished.withLock { $0 } }
}

/// How a streamed response ended other than normally: the outcome the caller gets.
public struct StreamedResponseError: Error, Sendable {
    public var outcome: InvocationOutcome
}

/// What a streaming caller sees of an invocation, in order: each chunk as it arrives, then the outcome.
enum StreamedInvocationEvent<Outcome: Sendable>: Sendable {
    case chunk(ByteBuffer)
    case done(Outcome)
}

/// Starts an invocation whose chunks go to the closure `run` is given; returns its events (ending
/// after `.done`) and its task.
func startStreamedInvocation<Outcome: Sendable>(
    _ run: @escaping @Sendable (_ streamTo: @escaping @Sendable (ByteBuffer) async -> Void) async -> Outcome
) -> (events: AsyncStream<StreamedInvocationEvent<Outcome>>, task: Task<Void, Never>) {
    let (events, emit) = AsyncStream.makeStream(of: StreamedInvocationEvent<Outcome>.self)
    let task = Task {
        emit.yield(.done(await run { emit.yield(.chunk($0)) }))
        emit.finish()
    }
    return (events, task)
}
