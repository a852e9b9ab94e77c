import Foundation
import MartletTestSupport
import Testing

/// `martlet invoke` as a user runs it: a real process, its output and its exit status.
@Suite("martlet invoke")
struct InvokeCommandTests {
    private struct Run {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    private func martlet(_ arguments: [String], input: String) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: builtProduct("martlet"))
        process.arguments = arguments + ["--no-build", "--command", builtProduct("bootstrap")]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, standardOutput: String(decoding: out, as: UTF8.self), standardError: String(decoding: err, as: UTF8.self))
    }

    @Test("Success prints the result on stdout, START/logs/END/REPORT on stderr, and exits 0")
    func success() throws {
        let run = try martlet(["invoke", "hello"], input: #"{"name":"Ada"}"#)
        #expect(run.status == 0)
        #expect(run.standardOutput == #"{"message":"Hello, Ada!"}"#)
        let lines = run.standardError.split(separator: "\n")
        #expect(lines.first?.hasPrefix("START RequestId: ") == true)
        #expect(lines.contains { $0.contains("\tINFO\tGreeting name=Ada") })
        #expect(lines.dropLast().last?.hasPrefix("END RequestId: ") == true)
        #expect(lines.last?.hasPrefix("REPORT RequestId: ") == true)
    }

    @Test("A function error exits 1, a timeout 3, and an invalid event 2")
    func failures() throws {
        let failed = try martlet(["invoke", "hello"], input: #"{"name":[]}"#)
        #expect(failed.status == 1)
        #expect(failed.standardOutput.contains("Runtime.UnmarshalError"))

        let timedOut = try martlet(["invoke", "sleep", "--timeout", "1"], input: #"{"seconds":4}"#)
        #expect(timedOut.status == 3)
        #expect(timedOut.standardError.contains("Task timed out after 1.00 seconds"))

        let invalid = try martlet(["invoke", "echo"], input: "{oops")
        #expect(invalid.status == 2)
        #expect(invalid.standardError.contains("the event is not valid JSON"))
    }

    @Test("The event can come from a file")
    func eventFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-event-\(UUID().uuidString).json")
        try #"{"from":"file"}"#.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try martlet(["invoke", "echo", "--event", file.path], input: "")
        #expect(run.status == 0)
        #expect(run.standardOutput == #"{"from":"file"}"#)
    }
}
