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
}
