import Foundation
import Logging
import MartletLocal
import MartletRuntime
import MartletTestSupport
import NIOCore
import Synchronization
import Testing

/// Lambda Managed Instances' mode: one real `bootstrap` process with `AWS_LAMBDA_MAX_CONCURRENCY`
/// serving overlapping invocations behind one local Runtime API.
@Suite("Concurrent mode with the real bootstrap")
struct ConcurrentModeTests {
    final class Lines: Sendable {
        private let state = Mutex<[String]>([])
        func record(_ line: String) { state.withLock { $0.append(line) } }
        var all: [String] { state.withLock { $0 } }
    }

    @Test("Eight overlapping invocations run at once in one process; each log line carries its own request id")
    func overlapping() async throws {
        let configuration = FunctionConfiguration(
            name: "sleep", handler: "sleep", command: [builtProduct("bootstrap")], timeout: .seconds(10), maxConcurrency: 8
        )
        let lines = Lines()
        let started = ContinuousClock.now
        let (reports, pid) = try await FunctionInstance.with(configuration, output: .lines(lines.record), logger: Logger(label: "test")) { instance in
            let reports = await withTaskGroup(of: InvocationReport.self) { group in
                for _ in 0..<8 { group.addTask { await instance.invoke(.json(#"{"seconds":0.5}"#, timeout: .seconds(10))) } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            await instance.outputSettled()
            return (reports, instance.processID)
        }
        let elapsed = ContinuousClock.now - started
        #expect(reports.allSatisfy { $0.outcome.isSuccess })
        #expect(elapsed < .seconds(2), "eight 0.5 s invocations overlapped in one process: \(elapsed)")
        #expect(pid > 0)
        let ids = Set(reports.map(\.requestID))
        #expect(ids.count == 8)
        // JSON logs (forced in this mode): every Sleeping/Awake line names one invocation, each exactly once.
        var sleeping: [String: Int] = [:]
        var awake: [String: Int] = [:]
        for line in lines.all {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let message = object["message"] as? String, let requestID = object["requestId"] as? String
            else { continue }
            if message.hasPrefix("Sleeping") { sleeping[requestID, default: 0] += 1 }
            if message.hasPrefix("Awake") { awake[requestID, default: 0] += 1 }
        }
        #expect(Set(sleeping.keys) == ids && sleeping.values.allSatisfy { $0 == 1 })
        #expect(Set(awake.keys) == ids && awake.values.allSatisfy { $0 == 1 })
    }
}
