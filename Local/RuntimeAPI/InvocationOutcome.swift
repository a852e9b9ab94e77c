import MartletRuntime
import NIOCore

/// How one invocation ended, as the caller of the Invoke API will see it.
public enum InvocationOutcome: Sendable {
    /// The runtime posted a response.
    case success(body: ByteBuffer, contentType: String?)
    /// The runtime posted to `/error`; the body is forwarded to the caller unchanged.
    case functionError(body: ByteBuffer, errorType: String?)
    /// The runtime posted to `/init/error` before it could serve the invocation.
    case initError(body: ByteBuffer, errorType: String?)
    /// The platform ended the invocation: timeout, crash, oversized response.
    case platformError(FunctionError)
    /// The runtime is streaming its response (only between the Runtime API and the function instance,
    /// which turns it into one of the others as the stream ends).
    case streamed(StreamedResponse)

    /// True unless the function or platform failed.
    public var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }

    /// The bytes the caller receives.
    public var body: ByteBuffer {
        switch self {
        case .success(let body, _), .functionError(let body, _), .initError(let body, _): body
        case .platformError(let error): ByteBuffer(string: error.json)
        case .streamed: ByteBuffer()
        }
    }

    /// The error type, for failures: the `/error` header or the platform's type.
    public var errorType: String? {
        switch self {
        case .success, .streamed: nil
        case .functionError(_, let type), .initError(_, let type): type ?? "Unhandled"
        case .platformError(let error): error.errorType
        }
    }

    /// Lambda's caller error for a timeout.
    public static func timedOut(requestID: String, after timeout: Duration) -> Self {
        .platformError(FunctionError(
            errorType: "Sandbox.Timedout",
            errorMessage: "RequestId: \(requestID) Error: Task timed out after \(DurationFormat.seconds(timeout)) seconds"
        ))
    }

    /// Lambda's caller error when the runtime process exits mid-invocation.
    public static func runtimeExited(requestID: String, status: ProcessExitStatus) -> Self {
        .platformError(FunctionError(
            errorType: "Runtime.ExitError",
            errorMessage: "RequestId: \(requestID) Error: Runtime exited with error: \(status)"
        ))
    }
}

/// Formats durations the way Lambda's messages do.
public enum DurationFormat {
    /// Seconds with two decimals: `3.00`.
    public static func seconds(_ duration: Duration) -> String {
        fixed(Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18, decimals: 2)
    }

    /// Milliseconds with two decimals: `12.34`.
    public static func milliseconds(_ duration: Duration) -> String {
        fixed(duration.milliseconds, decimals: 2)
    }

    static func fixed(_ value: Double, decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int64((value * scale).rounded())
        let whole = scaled / Int64(scale)
        let fraction = String(abs(scaled % Int64(scale)))
        return "\(whole).\(String(repeating: "0", count: decimals - fraction.count))\(fraction)"
    }
}

extension Duration {
    /// The duration in (fractional) milliseconds.
    public var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}

/// How a process ended, printed as Go's `os.ProcessState` does, which is what Lambda's messages show.
public enum ProcessExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    public var description: String {
        switch self {
        case .exited(let code): "exit status \(code)"
        case .signalled(let signal): "signal: \(Self.signalName(signal))"
        }
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case 9: "killed"
        case 15: "terminated"
        case 6: "aborted"
        case 11: "segmentation fault"
        case 4: "illegal instruction"
        case 5: "trace/breakpoint trap"
        case 7: "bus error"
        case 2: "interrupt"
        default: "signal \(signal)"
        }
    }
}
