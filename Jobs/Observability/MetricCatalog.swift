/// Every metric the application emits, in CloudWatch's `Martlet` namespace: what the template's
/// dashboard and alarms may name (`martlet contract` lists them; the checks hold the template to it).
public enum MetricCatalog {
    /// The CloudWatch namespace of the application's metrics.
    public static let namespace = "Martlet"

    public struct Metric: Encodable, Sendable, Equatable {
        public var name: String
        /// A CloudWatch unit: `Count` or `Milliseconds` here.
        public var unit: String
        /// The dimension set the metric is emitted with.
        public var dimensions: [String]
    }

    // Functions, per function (the runtime records these for every invocation).
    public static let invocations = Metric(name: "Invocations", unit: "Count", dimensions: ["FunctionName"])
    public static let errors = Metric(name: "Errors", unit: "Count", dimensions: ["FunctionName"])
    public static let duration = Metric(name: "Duration", unit: "Milliseconds", dimensions: ["FunctionName"])
    public static let coldStarts = Metric(name: "ColdStarts", unit: "Count", dimensions: ["FunctionName"])

    // Jobs, per model.
    public static let jobsSubmitted = Metric(name: "JobsSubmitted", unit: "Count", dimensions: ["Model"])
    public static let jobsStarted = Metric(name: "JobsStarted", unit: "Count", dimensions: ["Model"])
    public static let jobsSucceeded = Metric(name: "JobsSucceeded", unit: "Count", dimensions: ["Model"])
    public static let jobsFailed = Metric(name: "JobsFailed", unit: "Count", dimensions: ["Model"])
    public static let jobsRetried = Metric(name: "JobsRetried", unit: "Count", dimensions: ["Model"])
    /// Submit → claimed by a worker.
    public static let queueWait = Metric(name: "QueueWait", unit: "Milliseconds", dimensions: ["Model"])
    /// The model's own run.
    public static let modelTime = Metric(name: "ModelTime", unit: "Milliseconds", dimensions: ["Model"])
    /// Submit → result stored.
    public static let endToEndTime = Metric(name: "EndToEndTime", unit: "Milliseconds", dimensions: ["Model"])

    // Pushes to clients.
    public static let progressMessages = Metric(name: "ProgressMessages", unit: "Count", dimensions: [])
    public static let connectionsGone = Metric(name: "ConnectionsGone", unit: "Count", dimensions: [])

    public static let all: [Metric] = [
        invocations, errors, duration, coldStarts, jobsSubmitted, jobsStarted, jobsSucceeded, jobsFailed, jobsRetried, queueWait,
        modelTime, endToEndTime, progressMessages, connectionsGone,
    ]
}
