// The jobs pipeline's own cost on `martlet local`: WebSocket submit → function → queue → worker →
// @connections push, with the no-op model so that everything measured is pipeline.
//
// usage: jobs-bench --ws ws://127.0.0.1:PORT --key KEY [--jobs N (1000)] [--connections C (8)] [--samples S (50)]
//
// Prints, for sequential jobs on one connection, submit → accepted, submit → first progress and
// submit → result p50/p99 (the model takes ~0 ms, so submit → result is the overhead); then jobs per
// second with C connections, each submitting its share of N jobs at once and waiting for every
// result. The client is Swift on SwiftNIO (MartletClient's WebSocket client) so that the load
// generator takes as little as it can of the cores the stack runs on.
import Foundation
import MartletClient

struct Options {
    var ws = ""
    var key = ""
    var jobs = 1000
    var connections = 8
    var samples = 50

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        func value(_ name: String) throws -> String {
            guard let next = rest.popFirst() else { throw BenchError("\(name) needs a value") }
            return next
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--ws": ws = try value(argument)
            case "--key": key = try value(argument)
            case "--jobs": jobs = Int(try value(argument)) ?? jobs
            case "--connections": connections = Int(try value(argument)) ?? connections
            case "--samples": samples = Int(try value(argument)) ?? samples
            default: throw BenchError("unknown argument \(argument)")
            }
        }
        guard !ws.isEmpty, !key.isEmpty else { throw BenchError("usage: jobs-bench --ws URL --key KEY [--jobs N] [--connections C] [--samples S]") }
        guard jobs > 0, connections > 0, samples > 0 else { throw BenchError("--jobs, --connections and --samples must be positive") }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What the benchmark reads of a message: its type and job id.
struct Message: Decodable {
    var type: String
    var jobId: String?
}

func submit(_ connection: WebSocketConnection, _ index: Int) async throws {
    try await connection.send(#"{"action":"submit","model":"noop","parameters":{"i":\#(index)}}"#)
}

/// The next message, or an error when the connection ended or a job was refused.
func nextMessage(_ events: inout AsyncStream<WebSocketEvent>.Iterator) async throws -> Message {
    while let event = await events.next() {
        switch event {
        case .text(let text):
            let message = try JSONDecoder().decode(Message.self, from: Data(text.utf8))
            if message.type == "error" || message.type == "failed" { throw BenchError("the stack answered \(text)") }
            return message
        case .binary: continue
        case .closed(let code, let reason): throw BenchError("the connection closed (\(code.map(String.init) ?? "no code")) \(reason)")
        }
    }
    throw BenchError("the connection ended")
}

func percentile(_ values: [Double], _ q: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((q / 100 * Double(sorted.count - 1)).rounded()))]
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// One job on its own: (accepted, first progress, result) after its submit.
func oneJob(_ connection: WebSocketConnection, _ events: inout AsyncStream<WebSocketEvent>.Iterator, _ index: Int) async throws -> (Duration, Duration, Duration) {
    let clock = ContinuousClock()
    let started = clock.now
    try await submit(connection, index)
    var accepted: Duration?
    var firstProgress: Duration?
    var jobId: String?
    while true {
        let message = try await nextMessage(&events)
        let now = clock.now - started
        switch message.type {
        case "accepted" where accepted == nil:
            accepted = now
            jobId = message.jobId
        case "progress" where firstProgress == nil && message.jobId == jobId:
            firstProgress = now
        case "result" where message.jobId == jobId:
            return (accepted ?? now, firstProgress ?? now, now)
        default:
            continue
        }
    }
}

func latency(_ options: Options, url: String) async throws {
    let connection = try await WebSocketClient.connect(to: url)
    var events = connection.events.makeAsyncIterator()
    for warmUp in 0..<3 { _ = try await oneJob(connection, &events, -warmUp) }  // warm every function and the worker
    var samples: [(Duration, Duration, Duration)] = []
    for index in 0..<options.samples { samples.append(try await oneJob(connection, &events, index)) }
    await connection.close()
    print("sequential jobs (no-op model):")
    for (name, values) in [
        ("submit → accepted", samples.map { milliseconds($0.0) }), ("submit → first progress", samples.map { milliseconds($0.1) }),
        ("submit → result (overhead)", samples.map { milliseconds($0.2) }),
    ] {
        print("  \(name.padding(toLength: 32, withPad: " ", startingAt: 0)) p50 \(String(format: "%7.1f", percentile(values, 50))) ms   p99 \(String(format: "%7.1f", percentile(values, 99))) ms")
    }
}

/// `total` jobs over `connections` connections, each submitting its share at once and waiting for
/// every result; returns the seconds from the first submit to the last result.
func burst(total: Int, connections count: Int, url: String) async throws -> Double {
    let share = total / count
    let connections = try await withThrowingTaskGroup(of: WebSocketConnection.self) { group in
        for _ in 0..<count { group.addTask { try await WebSocketClient.connect(to: url, maxMessageSize: 1 << 20) } }
        return try await group.reduce(into: []) { $0.append($1) }
    }
    let clock = ContinuousClock()
    let started = clock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for connection in connections {
            group.addTask {
                var events = connection.events.makeAsyncIterator()
                for index in 0..<share { try await submit(connection, index) }
                var results = 0
                while results < share {
                    guard let event = await events.next() else { throw BenchError("the connection ended") }
                    guard case .text(let text) = event else {
                        if case .closed = event { throw BenchError("the connection closed") }
                        continue
                    }
                    // Only the type matters here: read it without decoding the whole message.
                    if text.contains(#""type":"result""#) {
                        results += 1
                    } else if text.contains(#""type":"error""#) || text.contains(#""type":"failed""#) {
                        throw BenchError("the stack answered \(text)")
                    }
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = milliseconds(clock.now - started) / 1000
    for connection in connections { await connection.close() }
    return elapsed
}

func throughput(_ options: Options, url: String) async throws {
    // As many function environments as connections are warm before the clock starts (the sequential
    // jobs above warmed one): a burst of a few jobs per connection.
    _ = try await burst(total: options.connections * 4, connections: options.connections, url: url)
    let jobs = options.jobs / options.connections * options.connections
    let elapsed = try await burst(total: jobs, connections: options.connections, url: url)
    print("throughput:")
    print("  \(jobs) no-op jobs over \(options.connections) connections: \(Int((Double(jobs) / elapsed).rounded())) jobs/s (\(String(format: "%.1f", elapsed)) s)")
}

do {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    let url = "\(options.ws)/?key=\(options.key)"
    try await latency(options, url: url)
    try await throughput(options, url: url)
} catch {
    FileHandle.standardError.write(Data("jobs-bench: \(error)\n".utf8))
    exit(1)
}
