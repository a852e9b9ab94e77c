import CoreMetrics
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A swift-metrics backend that writes CloudWatch Embedded Metric Format: structured log lines that
/// CloudWatch Logs turns into metrics, so recording costs no API call and needs no SDK.
///
/// Counters become `Count`, timers `Milliseconds` (every sample, up to 100 per line), recorders
/// unitless values. ``flush(timestamp:)`` writes what was recorded since the last flush, one line per
/// dimension set:
/// ```json
/// {"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"Martlet","Dimensions":[["FunctionName"]],
///   "Metrics":[{"Name":"Invocations","Unit":"Count"}]}]},"FunctionName":"api","Invocations":3}
/// ```
/// It also keeps running totals, for Prometheus' text format (``prometheusText()``).
public final class EMFMetricsFactory: MetricsFactory, Sendable {
    /// The CloudWatch namespace of every metric.
    public let namespace: String
    private let write: @Sendable (String) -> Void
    private let state = Mutex(State())

    /// What identifies one series: its name and its dimensions (sorted by name).
    struct Series: Hashable, Sendable {
        var name: String
        var dimensions: [Dimension]
    }

    struct Dimension: Hashable, Sendable, Comparable {
        var name: String
        var value: String
        static func < (left: Self, right: Self) -> Bool { (left.name, left.value) < (right.name, right.value) }
    }

    enum Kind: Sendable { case count, milliseconds, none }

    struct State {
        var counts: [Series: Int64] = [:]
        var samples: [Series: [Double]] = [:]
        var kinds: [Series: Kind] = [:]
        var totals: [Series: Double] = [:]
        var sampleCounts: [Series: Int64] = [:]
    }

    /// - Parameter write: where lines go (standard output by default, where Lambda and ECS pick them up).
    public init(namespace: String, write: @escaping @Sendable (String) -> Void = EMFMetricsFactory.standardOutput) {
        self.namespace = namespace
        self.write = write
    }

    /// Writes a line to standard output in one `write(2)`, so lines from several tasks never interleave.
    public static let standardOutput: @Sendable (String) -> Void = { line in
        var line = line + "\n"
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }

    // MARK: Recording

    func series(_ label: String, _ dimensions: [(String, String)]) -> Series {
        Series(name: label, dimensions: dimensions.map { Dimension(name: $0.0, value: $0.1) }.sorted())
    }

    func add(_ series: Series, count: Int64) {
        state.withLock { state in
            state.kinds[series] = .count
            state.counts[series, default: 0] += count
            state.totals[series, default: 0] += Double(count)
        }
    }

    func record(_ series: Series, value: Double, kind: Kind) {
        state.withLock { state in
            state.kinds[series] = kind
            state.samples[series, default: []].append(value)
            state.totals[series, default: 0] += value
            state.sampleCounts[series, default: 0] += 1
        }
    }

    // MARK: MetricsFactory

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        EMFCounter(factory: self, series: series(label, dimensions))
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        EMFRecorder(factory: self, series: series(label, dimensions))
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        EMFTimer(factory: self, series: series(label, dimensions))
    }

    public func destroyCounter(_ handler: any CounterHandler) {}
    public func destroyRecorder(_ handler: any RecorderHandler) {}
    public func destroyTimer(_ handler: any TimerHandler) {}

    // MARK: Output

    /// Writes everything recorded since the last flush (nothing when nothing was).
    public func flush(timestamp: Int64 = EMFMetricsFactory.nowMilliseconds()) {
        for line in takeLines(timestamp: timestamp) { write(line) }
    }

    /// The EMF lines for what was recorded since the last flush, and forgets it.
    func takeLines(timestamp: Int64) -> [String] {
        let (counts, samples, kinds) = state.withLock { state in
            defer {
                state.counts = [:]
                state.samples = [:]
            }
            return (state.counts, state.samples, state.kinds)
        }
        // Group the series by dimension set: one line each.
        var groups: [[Dimension]: [(name: String, kind: Kind, values: [Double])]] = [:]
        for (series, count) in counts { groups[series.dimensions, default: []].append((series.name, .count, [Double(count)])) }
        for (series, values) in samples { groups[series.dimensions, default: []].append((series.name, kinds[series] ?? .none, values)) }
        var lines: [String] = []
        for (dimensions, metrics) in groups.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let metrics = metrics.sorted { $0.name < $1.name }
            // At most 100 values per metric in one line.
            let rounds = metrics.map { ($0.values.count + 99) / 100 }.max() ?? 1
            for round in 0..<rounds {
                var definitions: [String] = []
                var members: [String] = []
                for metric in metrics {
                    let slice = Array(metric.values.dropFirst(round * 100).prefix(100))
                    guard !slice.isEmpty else { continue }
                    let unit = metric.kind == .count ? "Count" : metric.kind == .milliseconds ? "Milliseconds" : "None"
                    definitions.append("{\"Name\":\(JSONString.quoted(metric.name)),\"Unit\":\"\(unit)\"}")
                    let value = slice.count == 1 ? Self.number(slice[0]) : "[" + slice.map(Self.number).joined(separator: ",") + "]"
                    members.append("\(JSONString.quoted(metric.name)):\(value)")
                }
                let dimensionNames = "[" + dimensions.map { JSONString.quoted($0.name) }.joined(separator: ",") + "]"
                let dimensionValues = dimensions.map { "\(JSONString.quoted($0.name)):\(JSONString.quoted($0.value))" }
                let aws = "{\"Timestamp\":\(timestamp),\"CloudWatchMetrics\":[{\"Namespace\":\(JSONString.quoted(namespace)),"
                    + "\"Dimensions\":[\(dimensionNames)],\"Metrics\":[\(definitions.joined(separator: ","))]}]}"
                lines.append("{\"_aws\":\(aws)" + (dimensionValues + members).map { "," + $0 }.joined() + "}")
            }
        }
        return lines
    }

    /// Running totals in Prometheus' text format: counters as `_total`, timings as `_sum` and `_count`.
    public func prometheusText() -> String {
        let (totals, sampleCounts, kinds) = state.withLock { ($0.totals, $0.sampleCounts, $0.kinds) }
        var lines: [String] = []
        for (series, total) in totals.sorted(by: { Self.order($0.key) < Self.order($1.key) }) {
            let name = Self.snakeCase(namespace) + "_" + Self.snakeCase(series.name)
            let labels = series.dimensions.isEmpty ? "" : "{" + series.dimensions.map { "\(Self.snakeCase($0.name))=\(JSONString.quoted($0.value))" }.joined(separator: ",") + "}"
            switch kinds[series] ?? .none {
            case .count:
                lines.append("\(name)_total\(labels) \(Self.number(total))")
            case .milliseconds, .none:
                let suffix = kinds[series] == .milliseconds ? "_milliseconds" : ""
                lines.append("\(name)\(suffix)_sum\(labels) \(Self.number(total))")
                lines.append("\(name)\(suffix)_count\(labels) \(sampleCounts[series] ?? 0)")
            }
        }
        return lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
    }

    static func order(_ series: Series) -> String { series.name + "\u{0}" + series.dimensions.map(\.value).joined(separator: "\u{0}") }

    static func snakeCase(_ name: String) -> String {
        var out = ""
        for (index, character) in name.enumerated() {
            if character.isUppercase, index > 0 { out.append("_") }
            out.append(contentsOf: character.lowercased())
        }
        return out
    }

    /// A JSON number: integers without a fraction, others with up to three decimals.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        let scaled = (value * 1000).rounded() / 1000
        return "\(scaled)"
    }

    public static func nowMilliseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}

final class EMFCounter: CounterHandler, Sendable {
    let factory: EMFMetricsFactory
    let series: EMFMetricsFactory.Series
    init(factory: EMFMetricsFactory, series: EMFMetricsFactory.Series) {
        self.factory = factory
        self.series = series
    }
    func increment(by amount: Int64) { factory.add(series, count: amount) }
    func reset() {}
}

final class EMFRecorder: RecorderHandler, Sendable {
    let factory: EMFMetricsFactory
    let series: EMFMetricsFactory.Series
    init(factory: EMFMetricsFactory, series: EMFMetricsFactory.Series) {
        self.factory = factory
        self.series = series
    }
    func record(_ value: Int64) { factory.record(series, value: Double(value), kind: .none) }
    func record(_ value: Double) { factory.record(series, value: value, kind: .none) }
}

final class EMFTimer: TimerHandler, Sendable {
    let factory: EMFMetricsFactory
    let series: EMFMetricsFactory.Series
    init(factory: EMFMetricsFactory, series: EMFMetricsFactory.Series) {
        self.factory = factory
        self.series = series
    }
    func recordNanoseconds(_ duration: Int64) { factory.record(series, value: Double(duration) / 1_000_000, kind: .milliseconds) }
}
