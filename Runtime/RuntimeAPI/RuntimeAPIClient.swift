import NIOCore

/// The runtime's side of the Lambda Runtime API. ``HTTPRuntimeAPIClient`` is the real one.
public protocol RuntimeAPIClient {
    /// Long-polls `GET /runtime/invocation/next`; never times out.
    func nextInvocation() async throws -> Invocation
    /// `POST /runtime/invocation/{id}/response`.
    func reportResponse(_ body: ByteBuffer, for requestID: String) async throws
    /// `POST /runtime/invocation/{id}/error`.
    func reportError(_ error: FunctionError, for requestID: String) async throws
    /// `POST /runtime/init/error`.
    func reportInitError(_ error: FunctionError) async throws
    /// `POST /runtime/invocation/{id}/response` in streaming mode: what `body` writes goes out as it
    /// is written. An error `body` throws is reported (in the error trailers once a chunk has gone)
    /// and returned.
    func streamResponse(for requestID: String, _ body: (ResponseStream) async throws -> Void) async throws -> FunctionError?
}

extension RuntimeAPIClient {
    /// For clients that cannot stream: collects the chunks and posts them as one response.
    public func streamResponse(for requestID: String, _ body: (ResponseStream) async throws -> Void) async throws -> FunctionError? {
        let collector = CollectingSink()
        do {
            try await body(ResponseStream(sink: collector))
        } catch {
            let failure = FunctionError(error)
            try await reportError(failure, for: requestID)
            return failure
        }
        try await reportResponse(collector.collected, for: requestID)
        return nil
    }
}
