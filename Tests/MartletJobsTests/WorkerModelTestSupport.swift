import MartletRuntime
import Foundation
import Synchronization
import Testing

@testable import MartletWorker

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs `body` with a fresh temporary folder (and a `work` folder inside it), removed afterwards.
func withTemporaryFolder<T>(_ body: (_ folder: String, _ work: String) async throws -> T) async throws -> T {
    let folder = FileManager.default.temporaryDirectory.path + "/worker-models-\(UUID().uuidString)"
    let work = folder + "/work"
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    return try await body(folder, work)
}

/// Writes an executable shell script and returns its path.
func writeScript(_ name: String, in folder: String, _ body: String) throws -> String {
    let path = folder + "/" + name
    try ("#!/bin/sh\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    return path
}

func job(
    _ parameters: [String: JSONValue] = [:],
    model: String = "test",
    work: String,
    input: String? = nil
)
    -> ModelJob
{
    ModelJob(jobID: "job-1", model: model, parameters: parameters, inputPath: input, workFolder: work)
}

/// Collects progress reports; optionally fails at one of them.
final class ProgressRecorder: Sendable {
    private let reports = Mutex<[(percent: Int, message: String)]>([])
    private let failAt: (@Sendable (Int, String) throws -> Void)?

    init(failAt: (@Sendable (Int, String) throws -> Void)? = nil) { self.failAt = failAt }

    var percents: [Int] { reports.withLock { $0.map(\.percent) } }
    var messages: [String] { reports.withLock { $0.map(\.message) } }

    @Sendable func record(_ percent: Int, _ message: String) async throws {
        reports.withLock { $0.append((percent, message)) }
        try failAt?(percent, message)
    }
}

/// Whether `pid` is a live process (a zombie nobody reaped yet counts as gone).
func isAlive(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return true }
    return !stat[close...].dropFirst(2).hasPrefix("Z")
}

/// Polls for up to `limit` until `pid` is gone.
func waitUntilGone(_ pid: pid_t, limit: Duration = .seconds(2)) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if !isAlive(pid) { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return !isAlive(pid)
}

/// The fields of a 16-bit PCM WAV header, parsed back.
struct WAVHeader: Equatable {
    var riffSize: UInt32
    var format: UInt16
    var channels: UInt16
    var sampleRate: UInt32
    var byteRate: UInt32
    var blockAlign: UInt16
    var bitsPerSample: UInt16
    var dataSize: UInt32

    init?(_ data: Data) {
        let bytes = [UInt8](data)
        guard bytes.count >= 44,
            String(decoding: bytes[0..<4], as: UTF8.self) == "RIFF",
            String(decoding: bytes[8..<12], as: UTF8.self) == "WAVE",
            String(decoding: bytes[12..<16], as: UTF8.self) == "fmt ",
            String(decoding: bytes[36..<40], as: UTF8.self) == "data"
        else { return nil }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        guard u32(16) == 16 else { return nil }
        riffSize = u32(4)
        format = u16(20)
        channels = u16(22)
        sampleRate = u32(24)
        byteRate = u32(28)
        blockAlign = u16(32)
        bitsPerSample = u16(34)
        dataSize = u32(40)
    }
}

/// The package's root folder, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Worker").path
