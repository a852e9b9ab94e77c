import Foundation
import MartletTestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `martlet serve-function` as a user runs it, and how it stops.
@Suite("martlet serve-function")
struct ServeFunctionCommandTests {
    @Test("It serves the Invoke API, and SIGTERM stops it and the runtime process it started")
    func stopsRuntimeOnSignal() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: builtProduct("martlet"))
        process.arguments = ["serve-function", "echo", "--port", "0", "--no-build", "--command", builtProduct("bootstrap")]
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let address = try #require(announcedURL(stderr))

        var invoke = URLRequest(url: URL(string: "\(address)/2015-03-31/functions/echo/invocations")!)
        invoke.httpMethod = "POST"
        invoke.httpBody = Data(#"{"ping":1}"#.utf8)
        let (body, response) = try await URLSession.shared.data(for: invoke)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        #expect(String(decoding: body, as: UTF8.self) == #"{"ping":1}"#)

        let runtime = try #require(children(of: process.processIdentifier).first)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGTERM)
        #expect(kill(runtime, 0) == -1 && errno == ESRCH)
    }

    /// The process ids whose parent is `parent`, from `/proc`.
    private func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == parent
        }
    }
}
