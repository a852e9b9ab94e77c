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

    /// One series' values since the last flush, with its JSON pieces rendered once.
    final class Slot: Sendable {
        let series: Series
        let kind: Kind
        /// `{"Name":"…","Unit":"…"}` and `"Name":`.
        let definition: String
        let member: String
        /// What groups series into one line: the rendered dimension names and values.
        let dimensionNames: String
        let dimensionValues: String
        /// Under the factory's lock.
        nonisolated(unsafe) var count: Int64 = 0
        nonisolated(unsafe) var samples: [Double] = []
        nonisolated(unsafe) var dirty = false
        nonisolated(unsafe) var total = 0.0
        nonisolated(unsafe) var totalSamples: Int64 = 0

        init(series: Series, kind: Kind) {
            self.series = series
            self.kind = kind
            let unit = kind == .count ? "Count" : kind == .milliseconds ? "Milliseconds" : "None"
            definition = "{\"Name\":\(JSONString.quoted(series.name)),\"Unit\":\"\(unit)\"}"
            member = JSONString.quoted(series.name) + ":"
            dimensionNames = "[" + series.dimensions.map { JSONString.quoted($0.name) }.joined(separator: ",") + "]"
            dimensionValues = series.dimensions.map { "," + JSONString.quoted($0.name) + ":" + JSONString.quoted($0.value) }.joined()
        }
    }

    struct State {
        var slots: [Series: Slot] = [:]
        var dirty: [Slot] = []
    }

    /// - Parameter write: where lines go (standard output by default, where Lambda and ECS pick them up).
    public init(namespace: String, write: @escaping @Sendable (String) -> Void = EMFMetricsFactory.standardOutput) {
        self.namespace = namespace
        self.write = write
        namespaceJSON = JSONString.quoted(namespace)
    }

    private let namespaceJSON: String

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

    func slot(_ label: String, _ dimensions: [(String, String)], _ kind: Kind) -> Slot {
        let series = Series(name: label, dimensions: dimensions.map { Dimension(name: $0.0, value: $0.1) }.sorted())
        return state.withLock { state in
            if let slot = state.slots[series] { return slot }
            let slot = Slot(series: series, kind: kind)
            state.slots[series] = slot
            return slot
        }
    }

    func add(_ slot: Slot, count: Int64) {
        state.withLock { state in
            slot.count += count
            slot.total += Double(count)
            if !slot.dirty {
                slot.dirty = true
                state.dirty.append(slot)
            }
        }
    }

    func record(_ slot: Slot, value: Double) {
        state.withLock { state in
            slot.samples.append(value)
            slot.total += value
            slot.totalSamples += 1
            if !slot.dirty {
                slot.dirty = true
                state.dirty.append(slot)
            }
        }
    }

    // MARK: MetricsFactory

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        EMFCounter(factory: self, slot: slot(label, dimensions, .count))
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        EMFRecorder(factory: self, slot: slot(label, dimensions, .none))
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        EMFTimer(factory: self, slot: slot(label, dimensions, .milliseconds))
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
        typealias Taken = (slot: Slot, count: Int64, samples: [Double])
        let taken: [Taken] = state.withLock { state in
            defer { state.dirty.removeAll(keepingCapacity: true) }
            return state.dirty.map { slot in
                defer {
                    slot.count = 0
                    slot.samples = []
                    slot.dirty = false
                }
                return (slot, slot.count, slot.samples)
            }
        }
        guard !taken.isEmpty else { return [] }
        // One line per dimension set (in a stable order); usually there is just one.
        let first = taken[0].slot
        let groups: [[Taken]]
        if taken.allSatisfy({ $0.slot.dimensionValues == first.dimensionValues && $0.slot.dimensionNames == first.dimensionNames }) {
            groups = [taken]
        } else {
            var byKey: [String: [Taken]] = [:]
            for entry in taken { byKey[entry.slot.dimensionNames + entry.slot.dimensionValues, default: []].append(entry) }
            groups = byKey.keys.sorted().map { byKey[$0]! }
        }
        var lines: [String] = []
        for group in groups {
            let entries = group.count == 1 ? group : group.sorted { $0.slot.series.name < $1.slot.series.name }
            let rounds = entries.map { $0.slot.kind == .count ? 1 : ($0.samples.count + 99) / 100 }.max() ?? 1
            for round in 0..<rounds {
                var definitions = ""
                var members = ""
                for entry in entries {
                    // At most 100 values per metric in one line.
                    let values: ArraySlice<Double> = entry.slot.kind == .count
                        ? (round == 0 ? [Double(entry.count)][...] : [])
                        : entry.samples.dropFirst(round * 100).prefix(100)
                    guard let firstValue = values.first else { continue }
                    if !definitions.isEmpty { definitions += "," }
                    definitions += entry.slot.definition
                    members += ","
                    members += entry.slot.member
                    if values.count == 1 {
                        Self.appendNumber(firstValue, to: &members)
                    } else {
                        members += "["
                        for (index, value) in values.enumerated() {
                            if index > 0 { members += "," }
                            Self.appendNumber(value, to: &members)
                        }
                        members += "]"
                    }
                }
                let head = entries[0].slot
                var line = "{\"_aws\":{\"Timestamp\":"
                line += String(timestamp)
                line += ",\"CloudWatchMetrics\":[{\"Namespace\":"
                line += namespaceJSON
                line += ",\"Dimensions\":["
                line += head.dimensionNames
                line += "],\"Metrics\":["
                line += definitions
                line += "]}]}"
                line += head.dimensionValues
                line += members
                line += "}"
                lines.append(line)
            }
        }
        return lines
    }

    /// Running totals in Prometheus' text format: counters as `_total`, timings as `_sum` and `_count`.
    public func prometheusText() -> String {
        let slots = state.withLock { state in state.slots.values.map { ($0, $0.total, $0.totalSamples) } }
        var lines: [String] = []
        for (slot, total, samples) in slots.sorted(by: { Self.order($0.0.series) < Self.order($1.0.series) }) {
            let series = slot.series
            let name = Self.snakeCase(namespace) + "_" + Self.snakeCase(series.name)
            let labels = series.dimensions.isEmpty ? "" : "{" + series.dimensions.map { "\(Self.snakeCase($0.name))=\(JSONString.quoted($0.value))" }.joined(separator: ",") + "}"
            switch slot.kind {
            case .count:
                lines.append("\(name)_total\(labels) \(Self.number(total))")
            case .milliseconds, .none:
                let suffix = slot.kind == .milliseconds ? "_milliseconds" : ""
                lines.append("\(name)\(suffix)_sum\(labels) \(Self.number(total))")
                lines.append("\(name)\(suffix)_count\(labels) \(samples)")
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

    /// Appends a JSON number: integers without a fraction, others with three decimals at most,
    /// formatted with integer arithmetic (Double's own description is slow).
    static func appendNumber(_ value: Double, to out: inout String) {
        guard value.isFinite, abs(value) < 9e15 else { return out += "0" }
        let thousandths = Int64((value * 1000).rounded())
        if thousandths % 1000 == 0 { return out += String(thousandths / 1000) }
        if thousandths < 0 { out += "-" }
        let magnitude = thousandths.magnitude
        out += String(magnitude / 1000)
        var fraction = String(magnitude % 1000)
        while fraction.count < 3 { fraction = "0" + fraction }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        out += "." + fraction
    }

    /// A JSON number: integers without a fraction, others with up to three decimals.
    static func number(_ value: Double) -> String {
        var out = ""
        appendNumber(value, to: &out)
        return out
    }

    public static func nowMilliseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}

final class EMFCounter: CounterHandler, Sendable {
    let factory: EMFMetricsFactory
    let slot: EMFMetricsFactory.Slot
    init(factory: EMFMetricsFactory, slot: EMFMetricsFactory.Slot) {
        self.factory = factory
        self.slot = slot
    }
    func increment(by amount: Int64) { factory.add(slot, count: amount) }
    func reset() {}
}

final class EMFRecorder: RecorderHandler, Sendable {
    let factory: EMFMetricsFactory
    let slot: EMFMetricsFactory.Slot
    init(factory: EMFMetricsFactory, slot: EMFMetricsFactory.Slot) {
        self.factory = factory
        self.slot = slot
    }
    func record(_ value: Int64) { factory.record(slot, value: Double(value)) }
    func record(_ value: Double) { factory.record(slot, value: value) }
}

final class EMFTimer: TimerHandler, Sendable {
    let factory: EMFMetricsFactory
    let slot: EMFMetricsFactory.Slot
    init(factory: EMFMetricsFactory, slot: EMFMetricsFactory.Slot) {
        self.factory = factory
        self.slot = slot
    }
    func recordNanoseconds(_ duration: Int64) { factory.record(slot, value: Double(duration) / 1_000_000) }
}
