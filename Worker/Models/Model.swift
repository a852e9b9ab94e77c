import MartletRuntime

/// One job as a model sees it.
struct ModelJob: Sendable {
    var jobID: String
    var model: String
    /// The job's parameters as JSON (an object), as the client sent them.
    var parameters: [String: JSONValue]
    /// A local file holding the job's input object, when the job has one.
    var inputPath: String?
    /// A folder the model may write to; it is removed after the job.
    var workFolder: String
}

/// What a model produced: a file to upload as the job's result.
struct ModelResult: Sendable {
    var path: String
    var contentType: String
    /// A short human-readable summary (e.g. "3.0 s of audio, 44.1 kHz").
    var summary: String?
}

/// A failure of the model itself (bad parameters, a crashed command): the job's attempt fails with `message`.
struct ModelError: Error, Sendable, Equatable {
    var message: String
    var isRetryable: Bool
}

/// A model the worker can run. `progress` is called with 0...100 and a short message; it throws
/// `CancellationError` when the job was cancelled (the model must stop promptly and clean up).
protocol JobModel: Sendable {
    var name: String { get }
    /// Loads weights or warms up before the worker takes work.
    func warmUp() async throws
    func run(_ job: ModelJob, progress: @Sendable (Int, String) async throws -> Void) async throws -> ModelResult
}

extension ModelError: CustomStringConvertible {
    var description: String { message }

    /// A parameter the model cannot use; retrying the same job cannot help.
    static func invalidParameter(_ message: String) -> ModelError {
        ModelError(message: message, isRetryable: false)
    }
}

extension JSONValue {
    /// The string, if this is one.
    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}
