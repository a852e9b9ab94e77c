import Foundation
import Synchronization

/// The local stack's metrics, read from the Embedded Metric Format lines its functions and workers
/// write (the same lines CloudWatch turns into metrics on AWS), kept in 5-second buckets for the
/// last 15 minutes, for the console's charts and the summary `martlet local` prints when it stops.
public final class MetricsCollector: Sendable {
    public static let bucketSeconds = 5
    static let keptBuckets = 180
    /// Samples kept per bucket and series, for percentiles.
    static let keptSamples = 2000

    public struct Point: Codable, Sendable, Equatable {
        /// The bucket's start, milliseconds since 1970.
        public var t: Int64
        public var count: Int
        public var sum: Double
        public var p50: Double?
        public var p99: Double?
    }

    public struct Series: Codable, Sendable, Equatable {
        public var name: String
        public var unit: String
        public var dimensions: [String: String]
        public var points: [Point]
    }

    public struct Snapshot: Codable, Sendable, Equatable {
        public var bucketSeconds: Int
        public var now: Int64
        public var series: [Series]
    }

    struct Key: Hashable {
        var name: String
        var dimensions: [String: String]
    }

    struct Bucket {
        var count = 0
        var sum = 0.0
        var samples: [Double] = []
    }

    struct State {
        var units: [Key: String] = [:]
        var buckets: [Key: [Int64: Bucket]] = [:]
        /// Totals since the start, for the summary.
        var totals: [Key: (count: Int, sum: Double)] = [:]
        var samples: [Key: [Double]] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Whether `line` is an EMF line (then it is taken in, not printed).
    public static func isEMF(_ line: String) -> Bool { line.hasPrefix("{\"_aws\":") }

    /// Takes in one EMF line; false when it is not one.
    @discardableResult
    public func ingest(_ line: String, receivedAt: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) -> Bool {
        guard Self.isEMF(line), let root = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let aws = root["_aws"] as? [String: Any], let directives = aws["CloudWatchMetrics"] as? [[String: Any]]
        else { return false }
        let timestamp = (aws["Timestamp"] as? NSNumber)?.int64Value ?? receivedAt
        let bucketStart = timestamp - timestamp % Int64(Self.bucketSeconds * 1000)
        var entries: [(Key, String, [Double])] = []
        for directive in directives {
            let names = (directive["Dimensions"] as? [[String]])?.first ?? []
            var dimensions: [String: String] = [:]
            for name in names { dimensions[name] = root[name] as? String }
            for metric in directive["Metrics"] as? [[String: Any]] ?? [] {
                guard let name = metric["Name"] as? String else { continue }
                let values: [Double]
                switch root[name] {
                case let list as [NSNumber]: values = list.map(\.doubleValue)
                case let number as NSNumber: values = [number.doubleValue]
                default: continue
                }
                entries.append((Key(name: name, dimensions: dimensions), metric["Unit"] as? String ?? "None", values))
            }
        }
        state.withLock { state in
            for (key, unit, values) in entries {
                state.units[key] = unit
                var bucket = state.buckets[key, default: [:]][bucketStart, default: Bucket()]
                bucket.count += values.count
                bucket.sum += values.reduce(0, +)
                if unit != "Count", bucket.samples.count < Self.keptSamples { bucket.samples.append(contentsOf: values.prefix(Self.keptSamples - bucket.samples.count)) }
                state.buckets[key, default: [:]][bucketStart] = bucket
                let total = state.totals[key] ?? (0, 0)
                state.totals[key] = (total.count + values.count, total.sum + values.reduce(0, +))
                if unit != "Count", state.samples[key, default: []].count < 100_000 { state.samples[key, default: []].append(contentsOf: values) }
                // Forget buckets older than the window.
                let oldest = bucketStart - Int64(Self.keptBuckets * Self.bucketSeconds * 1000)
                if state.buckets[key]!.count > Self.keptBuckets { state.buckets[key] = state.buckets[key]!.filter { $0.key > oldest } }
            }
        }
        return true
    }

    /// The window's series, for the console.
    public func snapshot(now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) -> Snapshot {
        let oldest = now - Int64(Self.keptBuckets * Self.bucketSeconds * 1000)
        let series = state.withLock { state in
            state.buckets.map { key, buckets in
                let unit = state.units[key] ?? "None"
                let points = buckets.filter { $0.key >= oldest }.sorted { $0.key < $1.key }.map { start, bucket in
                    Point(
                        t: start, count: bucket.count, sum: bucket.sum, p50: unit == "Count" ? nil : Self.percentile(bucket.samples, 50),
                        p99: unit == "Count" ? nil : Self.percentile(bucket.samples, 99)
                    )
                }
                return Series(name: key.name, unit: unit, dimensions: key.dimensions, points: points)
            }
        }
        return Snapshot(
            bucketSeconds: Self.bucketSeconds, now: now,
            series: series.filter { !$0.points.isEmpty }.sorted { ($0.name, $0.dimensions.sorted { $0.key < $1.key }.map(\.value).joined()) < ($1.name, $1.dimensions.sorted { $0.key < $1.key }.map(\.value).joined()) }
        )
    }

    /// A few lines for the end of a run: totals per metric, percentiles for times.
    public func summary() -> [String] {
        let (totals, samples, units) = state.withLock { ($0.totals, $0.samples, $0.units) }
        guard !totals.isEmpty else { return [] }
        var byName: [String: (count: Int, sum: Double, values: [Double], unit: String)] = [:]
        for (key, total) in totals {
            var entry = byName[key.name] ?? (0, 0, [], units[key] ?? "None")
            entry.count += total.count
            entry.sum += total.sum
            entry.values += samples[key] ?? []
            byName[key.name] = entry
        }
        return byName.sorted { $0.key < $1.key }.map { name, entry in
            if entry.unit == "Count" { return "\(name): \(Int(entry.sum))" }
            let p50 = Self.percentile(entry.values, 50).map { String(format: "%.1f", $0) } ?? "-"
            let p99 = Self.percentile(entry.values, 99).map { String(format: "%.1f", $0) } ?? "-"
            return "\(name): \(entry.count) samples, p50 \(p50) ms, p99 \(p99) ms"
        }
    }

    static func percentile(_ values: [Double], _ q: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let index = Int((q / 100 * Double(sorted.count - 1)).rounded())
        return sorted[min(sorted.count - 1, max(0, index))]
    }
}
