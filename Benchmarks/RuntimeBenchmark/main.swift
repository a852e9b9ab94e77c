import Foundation
import Logging
import MartletLocal
import MartletRuntime
import NIOCore
import NIOPosix

// Measures an echo function through the runtime loop and the local Runtime API, for Martlet's
// `bootstrap` and for a peer runtime (awslambdaric) in the same run:
// warm invocations per second, per-invocation overhead (p50/p99), and cold start (spawn → first `next`).
//
// usage: runtime-bench --bootstrap PATH --python PATH --handler-dir DIR [--invocations N] [--cold-starts N]

struct Options {
    var bootstrap = ""
    var python = ""
    var handlerDirectory = ""
    var invocations = 5000
    var coldStarts = 30
    /// A minimal C echo runtime: the floor of what the harness can measure.
    var floor: String?
    var payload = #"{"message":"hello","n":1}"#

    init(_ arguments: [String]) {
        var index = 1
        func value() -> String {
            index += 1
            guard index < arguments.count else { fatalError("missing value for \(arguments[index - 1])") }
            return arguments[index]
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--bootstrap": bootstrap = value()
            case "--python": python = value()
            case "--handler-dir": handlerDirectory = value()
            case "--invocations": invocations = Int(value())!
            case "--cold-starts": coldStarts = Int(value())!
            case "--floor": floor = value()
            default: fatalError("unknown argument \(arguments[index])")
            }
            index += 1
        }
    }
}

struct Measurement {
    var name: String
    var perSecond: Double
    var p50: Double
    var p99: Double
    var coldStartMedian: Double
    var coldStartP90: Double
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]
}

func measure(
    name: String, command: [String], handler: String, taskRoot: String?, options: Options, variables: [String: String] = [:]
) async throws -> Measurement {
    let logger = Logger(label: "bench")
    let configuration = FunctionConfiguration(
        name: "echo", handler: handler, command: command, taskRoot: taskRoot, timeout: .seconds(30), variables: variables
    )
    let payload = ByteBuffer(string: options.payload)
    // The function's output goes to /dev/null, as on Lambda, where the platform (not the function's
    // CPU) reads the log pipe; a reader thread here would compete with the runtime for the 2 cores.
    let discard = open("/dev/null", O_WRONLY)
    defer { close(discard) }
    let output = ProcessOutput.inherit(standardOutput: discard, standardError: discard)

    // Warm: one environment, sequential invocations, as Lambda runs them.
    progress("\(name): \(options.invocations) warm invocations")
    // The server and this invoking task share one event loop thread, as a gateway's handlers would:
    // the figures are the runtime's costs, not thread hand-offs inside the harness.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    let (latencies, total): ([Double], Duration) = options.invocations == 0 ? ([0], .seconds(1)) : try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { try await FunctionInstance.with(configuration, output: output, eventLoopGroup: group, logger: logger) { instance in
        let readiness = await instance.environment.waitUntilReady()
        guard case .ready = readiness else { fatalError("\(name) did not start: \(String(describing: readiness))") }
        progress("\(name): ready")
        for _ in 0..<min(500, options.invocations) {
            _ = await instance.environment.invoke(.init(event: payload, timeout: .seconds(30)))
        }
        var latencies: [Double] = []
        latencies.reserveCapacity(options.invocations)
        let start = ContinuousClock.now
        for _ in 0..<options.invocations {
            let begin = ContinuousClock.now
            let outcome = await instance.environment.invoke(.init(event: payload, timeout: .seconds(30)))
            latencies.append((ContinuousClock.now - begin).milliseconds * 1000)
            guard outcome.isSuccess else { fatalError("\(name) failed: \(String(buffer: outcome.body))") }
        }
        return (latencies.sorted(), ContinuousClock.now - start)
    } }

    // Cold: process start → first poll of `next`.
    progress("\(name): \(options.coldStarts) cold starts")
    var colds: [Double] = []
    for _ in 0..<options.coldStarts {
        let cold = try await FunctionInstance.with(configuration, output: .lines { _ in }, logger: logger) { instance in
            _ = await instance.environment.waitUntilReady()
            return (instance.environment.firstPollAt! - instance.startedAt).milliseconds
        }
        colds.append(cold)
    }
    colds.sort()
    return Measurement(
        name: name, perSecond: Double(options.invocations) / (total.milliseconds / 1000),
        p50: percentile(latencies, 0.50), p99: percentile(latencies, 0.99),
        coldStartMedian: percentile(colds, 0.5), coldStartP90: percentile(colds, 0.9)
    )
}

func progress(_ line: String) { FileHandle.standardError.write(Data("runtime-bench: \(line)\n".utf8)) }

func fixed(_ value: Double, _ decimals: Int = 1) -> String { String(format: "%.\(decimals)f", value) }

let options = Options(CommandLine.arguments)
let ours = try await measure(name: "martlet bootstrap", command: [options.bootstrap], handler: "echo", taskRoot: nil, options: options)
let peer = try await measure(
    name: "awslambdaric", command: [options.python, "-m", "awslambdaric", "app.handler"], handler: "app.handler",
    taskRoot: options.handlerDirectory, options: options
)

print("echo function, \(options.invocations) warm invocations and \(options.coldStarts) cold starts each, same Runtime API server")
print("runtime              inv/s    p50 µs   p99 µs   cold median ms   cold p90 ms")
for row in [ours, peer] {
    print(
        row.name.padding(toLength: 20, withPad: " ", startingAt: 0)
            + fixed(row.perSecond, 0).leftPad(6) + fixed(row.p50).leftPad(10) + fixed(row.p99).leftPad(9)
            + fixed(row.coldStartMedian, 2).leftPad(17) + fixed(row.coldStartP90, 2).leftPad(14)
    )
}
if let floor = options.floor {
    let measured = try await measure(name: "C floor", command: [floor], handler: "echo", taskRoot: nil, options: options)
    print(
        "C echo (floor)".padding(toLength: 20, withPad: " ", startingAt: 0)
            + fixed(measured.perSecond, 0).leftPad(6) + fixed(measured.p50).leftPad(10) + fixed(measured.p99).leftPad(9)
            + fixed(measured.coldStartMedian, 2).leftPad(17) + fixed(measured.coldStartP90, 2).leftPad(14)
    )
    print("above the floor, p50: martlet +\(fixed(ours.p50 - measured.p50)) µs, awslambdaric +\(fixed(peer.p50 - measured.p50)) µs; "
        + "cold start: martlet +\(fixed(ours.coldStartMedian - measured.coldStartMedian, 2)) ms, awslambdaric +\(fixed(peer.coldStartMedian - measured.coldStartMedian, 2)) ms")
}
// The cost of the runtime's EMF metrics on the hot path: the same bootstrap with them off, and on
// again, so drift between the runs shows.
let metricsOff = try await measure(
    name: "martlet, metrics off", command: [options.bootstrap], handler: "echo", taskRoot: nil, options: options, variables: ["MARTLET_METRICS": "off"]
)
let metricsOn = try await measure(name: "martlet, metrics on", command: [options.bootstrap], handler: "echo", taskRoot: nil, options: options)
let onRate = (ours.perSecond + metricsOn.perSecond) / 2
print("metrics: \(fixed(onRate, 0)) inv/s on (mean of two runs), \(fixed(metricsOff.perSecond, 0)) inv/s off: "
    + "cost \(fixed(100 * (metricsOff.perSecond - onRate) / metricsOff.perSecond))% of warm throughput; p50 +\(fixed((ours.p50 + metricsOn.p50) / 2 - metricsOff.p50)) µs")
print("ratios (martlet / awslambdaric): throughput \(fixed(ours.perSecond / peer.perSecond, 2))×, "
    + "p99 overhead \(fixed(peer.p99 / ours.p99, 2))× lower, cold start \(fixed(peer.coldStartMedian / ours.coldStartMedian, 2))× faster")

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
