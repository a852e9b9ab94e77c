import Foundation
import MartletAWS
import MartletJobs
import MartletRuntime
import Synchronization
import Testing

/// Metrics in CloudWatch Embedded Metric Format: every line the code writes is checked against the
/// EMF specification, and the counts after a known sequence of jobs are what happened.
@Suite("Metrics (EMF)", .serialized)
struct MetricsTests {
    /// Collects the lines a factory writes.
    final class Lines: Sendable {
        private let state = Mutex<[String]>([])
        func write(_ line: String) { state.withLock { $0.append(line) } }
        var all: [String] { state.withLock { $0 } }
    }

    /// CloudWatch's units (the EMF specification's `Unit` values).
    static let units: Set<String> = [
        "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits",
        "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
        "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
    ]

    /// The problems of one line against the EMF specification (empty when it conforms).
    static func problems(_ line: String) -> [String] {
        guard let root = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return ["not a JSON object"] }
        guard let aws = root["_aws"] as? [String: Any] else { return ["no _aws object"] }
        var problems: [String] = []
        if !(aws["Timestamp"] is Int) { problems.append("_aws.Timestamp is not an integer of milliseconds") }
        guard let directives = aws["CloudWatchMetrics"] as? [[String: Any]], !directives.isEmpty else { return problems + ["no CloudWatchMetrics"] }
        for directive in directives {
            guard let namespace = directive["Namespace"] as? String, (1...1024).contains(namespace.count) else {
                problems.append("a directive without a Namespace")
                continue
            }
            guard let dimensionSets = directive["Dimensions"] as? [[String]] else {
                problems.append("Dimensions is not an array of arrays of strings")
                continue
            }
            for set in dimensionSets {
                if set.count > 30 { problems.append("more than 30 dimensions in a set") }
                for name in set where !(root[name] is String) { problems.append("dimension \(name) has no string member") }
            }
            guard let metrics = directive["Metrics"] as? [[String: Any]], (1...100).contains(metrics.count) else {
                problems.append("Metrics must hold 1 to 100 definitions")
                continue
            }
            for metric in metrics {
                guard let name = metric["Name"] as? String, (1...1024).contains(name.count) else {
                    problems.append("a metric without a Name")
                    continue
                }
                if let unit = metric["Unit"] as? String, !units.contains(unit) { problems.append("\(name): unit \(unit) is not CloudWatch's") }
                switch root[name] {
                case let values as [Any]:
                    if values.isEmpty || values.count > 100 || !values.allSatisfy({ $0 is NSNumber }) { problems.append("\(name): 1 to 100 numbers") }
                case is NSNumber: break
                default: problems.append("\(name) has no numeric member")
                }
            }
        }
        return problems
    }

    /// Sums of each metric over `lines`, by name and dimension value (`Name` or `Name|value`).
    static func totals(_ lines: [String]) -> (counts: [String: Double], samples: [String: Int]) {
        var counts: [String: Double] = [:]
        var samples: [String: Int] = [:]
        for line in lines {
            guard let root = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let aws = root["_aws"] as? [String: Any], let directives = aws["CloudWatchMetrics"] as? [[String: Any]]
            else { continue }
            for directive in directives {
                let dimensions = (directive["Dimensions"] as? [[String]])?.first ?? []
                let suffix = dimensions.compactMap { root[$0] as? String }.map { "|" + $0 }.joined()
                for metric in directive["Metrics"] as? [[String: Any]] ?? [] {
                    guard let name = metric["Name"] as? String else { continue }
                    let values = (root[name] as? [NSNumber]) ?? [(root[name] as? NSNumber) ?? 0]
                    counts[name + suffix, default: 0] += values.reduce(0) { $0 + $1.doubleValue }
                    samples[name + suffix, default: 0] += values.count
                }
            }
        }
        return (counts, samples)
    }

    @Test("The factory's lines follow the EMF specification: dimension sets, units, at most 100 values per line")
    func specification() throws {
        let lines = Lines()
        let factory = EMFMetricsFactory(namespace: "Martlet", write: lines.write)
        let metrics = JobMetrics(factory: factory)
        for index in 0..<250 { metrics.time(MetricCatalog.queueWait, model: "demo", milliseconds: Int64(index)) }
        metrics.count(MetricCatalog.jobsSubmitted, model: "demo", by: 3)
        metrics.count(MetricCatalog.jobsSubmitted, model: "voice")
        metrics.count(MetricCatalog.progressMessages)
        factory.flush(timestamp: 1_700_000_000_000)
        #expect(!lines.all.isEmpty)
        for line in lines.all { #expect(Self.problems(line).isEmpty, "\(Self.problems(line)): \(line)") }
        let (counts, samples) = Self.totals(lines.all)
        #expect(samples["QueueWait|demo"] == 250)
        #expect(counts["QueueWait|demo"] == Double((0..<250).reduce(0, +)))
        #expect(counts["JobsSubmitted|demo"] == 3 && counts["JobsSubmitted|voice"] == 1 && counts["ProgressMessages"] == 1)
        // A second flush with nothing new writes nothing; running totals stay for Prometheus.
        let before = lines.all.count
        factory.flush()
        #expect(lines.all.count == before)
        let prometheus = factory.prometheusText()
        #expect(prometheus.contains(#"martlet_jobs_submitted_total{model="demo"} 3"#))
        #expect(prometheus.contains(#"martlet_queue_wait_milliseconds_count{model="demo"} 250"#))
    }

    @Test("After two successes and a job that fails on its second attempt, the counts are what happened")
    func jobCounts() async throws {
        let lines = Lines()
        let factory = EMFMetricsFactory(namespace: "Martlet", write: lines.write)
        let pipeline = JobsPipelineTests()
        try await pipeline.withStack(maxAttempts: 2) { stack in
            var stack = stack
            stack.metrics = JobMetrics(factory: factory)
            try await pipeline.withWorker(stack) {
                var ids: [String] = []
                for body in [
                    #"{"model":"demo","parameters":{"prompt":"one","seconds":0.5}}"#, #"{"model":"demo","parameters":{"prompt":"two","seconds":0.5}}"#,
                    #"{"model":"demo","parameters":{"prompt":"x","failWith":"GPU fell over"}}"#,
                ] {
                    ids.append(pipeline.jobId(try await pipeline.submit(stack, body).json))
                }
                for id in ids { _ = try await pipeline.waitForEnd(stack, id) }
            }
        }
        factory.flush()
        for line in lines.all { #expect(Self.problems(line).isEmpty, "\(Self.problems(line)): \(line)") }
        let (counts, samples) = Self.totals(lines.all)
        #expect(counts["JobsSubmitted|demo"] == 3)
        #expect(counts["JobsStarted|demo"] == 4, "two jobs once, the failing one twice")
        #expect(counts["JobsSucceeded|demo"] == 2)
        #expect(counts["JobsRetried|demo"] == 1)
        #expect(counts["JobsFailed|demo"] == 1)
        #expect(samples["QueueWait|demo"] == 4 && samples["ModelTime|demo"] == 2 && samples["EndToEndTime|demo"] == 2)
    }

    @Test("The runtime's own metrics per invocation: invocations, errors, duration, one cold start")
    func invocationMetrics() throws {
        let lines = Lines()
        let factory = EMFMetricsFactory(namespace: "Martlet", write: lines.write)
        let metrics = InvocationMetrics(functionName: "api", factory: factory) { factory.flush() }
        metrics.record(elapsed: .milliseconds(12), failed: false)
        metrics.record(elapsed: .milliseconds(30), failed: true)
        metrics.flush()
        for line in lines.all { #expect(Self.problems(line).isEmpty, "\(Self.problems(line)): \(line)") }
        let (counts, samples) = Self.totals(lines.all)
        #expect(counts["Invocations|api"] == 2 && counts["Errors|api"] == 1 && counts["ColdStarts|api"] == 1)
        #expect(samples["Duration|api"] == 2 && counts["Duration|api"] == 42)
    }

    @Test("Under load the runtime writes at most one line a second (or per 100 invocations); after a quiet second, at once")
    func flushSchedule() async throws {
        let flushes = Mutex(0)
        let factory = EMFMetricsFactory(namespace: "Martlet") { _ in }
        let metrics = InvocationMetrics(functionName: "api", factory: factory) { flushes.withLock { $0 += 1 } }
        for _ in 0..<150 { metrics.recordAndFlushIfDue(elapsed: .microseconds(100), failed: false) }
        #expect(flushes.withLock { $0 } == 2, "the first invocation, then the 100th held")
        try await Task.sleep(for: .milliseconds(1100))
        metrics.recordAndFlushIfDue(elapsed: .microseconds(100), failed: false)
        #expect(flushes.withLock { $0 } == 3, "after a quiet second, at once")
    }

    @Test("Every metric the code records is in the catalog the template is checked against")
    func catalog() {
        #expect(Set(MetricCatalog.all.map(\.name)).count == MetricCatalog.all.count)
        #expect(MetricCatalog.all.allSatisfy { Self.units.contains($0.unit) })
        #expect(MetricCatalog.namespace == "Martlet")
    }
}

/// The trace a job carries from the request that submitted it.
@Suite("Job traces")
struct JobTraceTests {
    @Test("A submitted job's queue message carries the submitting request's trace header (AWSTraceHeader), as does its record")
    func queueMessageCarriesTrace() async throws {
        let pipeline = JobsPipelineTests()
        try await pipeline.withStack { stack in
            let trace = "Root=1-6b09aaaa-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
            let service = try stack.service
            let owner = try #require(service.keys.owner(forKey: JobsPipelineTests.key))
            let accepted = try await service.submit(JobRequest(model: "noop"), owner: owner, traceHeader: trace)
            let messages = try await SQSClient(stack.aws).receiveMessages(queueURL: stack.environment["JOBS_QUEUE_URL"]!, maxMessages: 1, waitTime: 1)
            let message = try #require(messages.first)
            #expect(message.body.contains(accepted.jobId ?? "-"))
            #expect(message.traceHeader == trace)
            #expect(try await service.jobs.job(accepted.jobId ?? "")?.traceHeader == trace)
            #expect(AWSTrace.rootID(trace) == "1-6b09aaaa-0123456789abcdef01234567")
        }
    }
}
