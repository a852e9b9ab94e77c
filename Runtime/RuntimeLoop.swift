import Logging
import NIOCore

/// The loop at the heart of every function: next → context → handle → respond, or report the error and go on.
public enum RuntimeLoop {
    /// Serves invocations from `client` with `handler` until the task is cancelled.
    ///
    /// A handler error becomes a Lambda error response and the loop continues; a failure of the
    /// Runtime API itself is thrown, and the runtime should exit.
    /// - Parameter exportsTraceID: sets `_X_AMZN_TRACE_ID` for each invocation (off when several share the process).
    public static func run<Client: RuntimeAPIClient>(
        client: Client,
        handler: any ByteHandler,
        logger: Logger,
        exportsTraceID: Bool = true,
        metrics: InvocationMetrics? = nil
    ) async throws {
        while !Task.isCancelled {
            let invocation: Invocation
            do {
                invocation = try await client.nextInvocation()
            } catch where Task.isCancelled {
                return
            }
            try await serve(invocation, client: client, handler: handler, logger: logger, exportsTraceID: exportsTraceID, metrics: metrics)
        }
    }

    /// Serves one invocation and reports its outcome; true when the function failed.
    @discardableResult
    static func serve<Client: RuntimeAPIClient>(
        _ invocation: Invocation,
        client: Client,
        handler: any ByteHandler,
        logger: Logger,
        exportsTraceID: Bool,
        metrics: InvocationMetrics? = nil
    ) async throws -> Bool {
        let started = ContinuousClock.now
        let metadata = invocation.metadata
        if exportsTraceID { ProcessEnvironment.set("_X_AMZN_TRACE_ID", metadata.traceID) }
        let context = InvocationContext(metadata: metadata, logger: logger)
        if let streaming = handler as? StreamingHandlerAdapter {
            let failure = try await client.streamResponse(for: metadata.requestID) { response in
                try await streaming.handler.handle(invocation.event, response: response, context: context)
            }
            if let failure {
                context.logger.error(
                    "Invocation failed", metadata: ["error.type": .string(failure.errorType), "error.message": .string(failure.errorMessage)]
                )
            }
            // After the answer, before `next`: Lambda freezes the process only at `next`.
            metrics?.recordAndFlushIfDue(elapsed: ContinuousClock.now - started, failed: failure != nil)
            return failure != nil
        }
        let result: Result<ByteBuffer, FunctionError>
        do {
            result = .success(try await handler.handle(invocation.event, context: context))
        } catch {
            let functionError = FunctionError(error)
            context.logger.error(
                "Invocation failed",
                metadata: ["error.type": .string(functionError.errorType), "error.message": .string(functionError.errorMessage)]
            )
            result = .failure(functionError)
        }
        // The metrics go out after the answer (off the caller's path) and before `next`, where Lambda
        // may freeze the process.
        defer { metrics?.recordAndFlushIfDue(elapsed: ContinuousClock.now - started, failed: (try? result.get()) == nil) }
        switch result {
        case .success(let body):
            do {
                try await client.reportResponse(body, for: metadata.requestID)
            } catch let error as RuntimeAPIError where error.status == 413 {
                // Lambda refused the oversized response and tells the caller itself; carry on.
                context.logger.error(
                    "Response exceeds Lambda's 6 MB limit", metadata: ["response.size": .stringConvertible(body.readableBytes)]
                )
            }
        case .failure(let error):
            try await client.reportError(error, for: metadata.requestID)
            return true
        }
        return false
    }
}
