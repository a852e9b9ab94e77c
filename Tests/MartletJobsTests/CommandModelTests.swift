import MartletRuntime
import Foundation
import Synchronization
import Testing

@testable import MartletWorker

@Suite struct CommandModelTests {
    @Test func forwardsProgressInOrderAndFindsTheResult() async throws {
        try await withTemporaryFolder { folder, work in
            let script = try writeScript(
                "model.sh",
                in: folder,
                """
                cat > job.json
                echo "PROGRESS 10 loading weights"
                echo "an ordinary log line"
                echo '{"progress": 50, "message": "halfway"}'
                echo "PROGRESS 100 done"
                echo "a caption" > out.txt
                echo "RESULT out.txt text/plain"
                """
            )
            let model = CommandModel(name: "sh", executable: script, arguments: [], timeout: .seconds(10))
            try await model.warmUp()
            let recorder = ProgressRecorder()
            let result = try await model.run(
                job(["prompt": .string("hi"), "steps": .number(3)], model: "sh", work: work),
                progress: recorder.record
            )

            #expect(recorder.percents == [10, 50, 100])
            #expect(recorder.messages == ["loading weights", "halfway", "done"])
            #expect(result.path == work + "/out.txt")
            #expect(result.contentType == "text/plain")
            let sent = try JSONDecoder().decode(
                JSONValue.self,
                from: Data(contentsOf: URL(fileURLWithPath: work + "/job.json"))
            )
            #expect(
                sent
                    == .object([
                        "jobId": .string("job-1"), "model": .string("sh"), "inputPath": .null,
                        "outputDir": .string(work),
                        "parameters": .object(["prompt": .string("hi"), "steps": .number(3)]),
                    ])
            )
            // The job's stdin file is gone.
            let files = try FileManager.default.contentsOfDirectory(atPath: work).sorted()
            #expect(files == ["job.json", "out.txt"])
        }
    }

    @Test func reportsTheOutputTailWhenTheCommandFails() async throws {
        try await withTemporaryFolder { folder, work in
            let script = try writeScript(
                "fail.sh",
                in: folder,
                """
                i=1; while [ $i -le 60 ]; do echo "line $i" >&2; i=$((i+1)); done
                exit 3
                """
            )
            let model = CommandModel(name: "sh", executable: script, arguments: [], timeout: nil)
            let error = await #expect(throws: ModelError.self) { _ = try await model.run(job(work: work)) { _, _ in } }
            let message = try #require(error?.message)
            #expect(error?.isRetryable == true)
            #expect(message.hasPrefix("command exited with status 3: line 11\n"))
            let lines = message.split(separator: "\n")
            #expect(lines.count == 50)
            #expect(lines.last == "line 60")
        }
    }

    @Test func failsWithoutARetryWhenNoResultIsNamed() async throws {
        try await withTemporaryFolder { folder, work in
            let silent = try writeScript("silent.sh", in: folder, "echo working\n")
            let error = await #expect(throws: ModelError.self) {
                _ = try await CommandModel(name: "sh", executable: silent, arguments: [], timeout: nil)
                    .run(job(work: work)) { _, _ in }
            }
            #expect(error?.isRetryable == false)
            #expect(error?.message == "command exited without printing \"RESULT <path> [content-type]\": working")

            let missing = try writeScript("missing.sh", in: folder, "echo 'RESULT nowhere.wav'\n")
            let missingError = await #expect(throws: ModelError.self) {
                _ = try await CommandModel(name: "sh", executable: missing, arguments: [], timeout: nil)
                    .run(job(work: work)) { _, _ in }
            }
            #expect(
                missingError
                    == ModelError(message: "command's result file nowhere.wav does not exist", isRetryable: false)
            )
        }
    }

    @Test func cancellationFromProgressStopsTheWholeProcessGroup() async throws {
        try await withTemporaryFolder { folder, work in
            let script = try writeScript(
                "slow.sh",
                in: folder,
                """
                sleep 30 &
                echo "PROGRESS 5 $$ $!"
                wait
                """
            )
            let pids = PIDBox()
            let recorder = ProgressRecorder { _, message in
                pids.set(message.split(separator: " ").compactMap { pid_t($0) })
                throw CancellationError()
            }
            let clock = ContinuousClock()
            let start = clock.now
            await #expect(throws: CancellationError.self) {
                _ = try await CommandModel(name: "sh", executable: script, arguments: [], timeout: nil)
                    .run(job(work: work), progress: recorder.record)
            }
            #expect(clock.now - start < .seconds(20), "stopped, not left to run its sleep 30")
            let both = pids.get()
            #expect(both.count == 2)
            for pid in both { #expect(await waitUntilGone(pid), "process \(pid) still runs") }
        }
    }

    @Test func cancellingTheTaskStopsTheCommand() async throws {
        try await withTemporaryFolder { folder, work in
            let script = try writeScript("slow.sh", in: folder, "echo \"PROGRESS 5 $$\"\nexec sleep 30\n")
            let (started, startedContinuation) = AsyncStream.makeStream(of: pid_t.self)
            let model = CommandModel(name: "sh", executable: script, arguments: [], timeout: nil)
            let task = Task {
                try await model.run(job(work: work)) { _, message in startedContinuation.yield(pid_t(message) ?? 0) }
            }
            var pid: pid_t = 0
            for await started in started {
                pid = started
                break
            }
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            #expect(pid > 1)
            #expect(await waitUntilGone(pid))
        }
    }

    @Test func killsACommandThatIgnoresSIGTERM() async throws {
        try await withTemporaryFolder { folder, work in
            let script = try writeScript(
                "stubborn.sh",
                in: folder,
                """
                trap '' TERM
                echo "PROGRESS 5 $$"
                while :; do sleep 0.1; done
                """
            )
            var model = CommandModel(name: "sh", executable: script, arguments: [], timeout: nil)
            model.terminationGracePeriod = .milliseconds(300)
            let pids = PIDBox()
            let recorder = ProgressRecorder { _, message in
                pids.set([pid_t(message) ?? 0])
                throw CancellationError()
            }
            let clock = ContinuousClock()
            let start = clock.now
            await #expect(throws: CancellationError.self) {
                _ = try await model.run(job(work: work), progress: recorder.record)
            }
            let elapsed = clock.now - start
            #expect(elapsed >= .milliseconds(300))
            #expect(elapsed < .seconds(20), "killed after the grace period, not left to run its sleep 30")
            let pid = try #require(pids.get().first)
            #expect(await waitUntilGone(pid))
        }
    }

    @Test func timesOut() async throws {
        try await withTemporaryFolder { folder, work in
            let script = try writeScript("hang.sh", in: folder, "echo 'loading' >&2\nexec sleep 30\n")
            let model = CommandModel(name: "sh", executable: script, arguments: [], timeout: .milliseconds(300))
            let clock = ContinuousClock()
            let start = clock.now
            await #expect(throws: ModelError(message: "timed out after 0.3 s: loading", isRetryable: true)) {
                _ = try await model.run(job(work: work)) { _, _ in }
            }
            #expect(clock.now - start < .seconds(20), "stopped, not left to run its sleep 30")
        }
    }

    @Test func startsTheCommandWithNoSignalsBlockedOrIgnored() async throws {
        try await withTemporaryFolder { folder, work in
            // Swift concurrency's threads block SIGTERM; a command must not inherit that.
            let script = try writeScript("signals.sh", in: folder, "exec grep -E 'SigBlk|SigIgn' /proc/self/status\n")
            let error = await #expect(throws: ModelError.self) {
                _ = try await CommandModel(name: "sh", executable: script, arguments: [], timeout: nil)
                    .run(job(work: work)) { _, _ in }
            }
            let message = error?.message ?? ""
            #expect(message.contains("SigBlk:\t0000000000000000"), "\(message)")
            // glibc keeps its two internal real-time signals ignored; SIGINT and SIGTERM must not be.
            let ignored = message.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }?.split(separator: "\t").last
            let mask = try #require(ignored.flatMap { UInt64($0, radix: 16) })
            #expect(mask & (1 << (SIGTERM - 1) | 1 << (SIGINT - 1)) == 0)
        }
    }

    @Test func finishesWhenABackgroundChildKeepsTheOutputOpen() async throws {
        try await withTemporaryFolder { folder, work in
            let script = try writeScript(
                "daemon.sh",
                in: folder,
                """
                sleep 30 &
                echo "PROGRESS 50 $!"
                echo done > out.txt
                echo "RESULT out.txt"
                """
            )
            var model = CommandModel(name: "sh", executable: script, arguments: [], timeout: nil)
            model.outputGracePeriod = .milliseconds(200)
            let pids = PIDBox()
            let clock = ContinuousClock()
            let start = clock.now
            let result = try await model.run(job(work: work)) { _, message in pids.set([pid_t(message) ?? 0]) }
            #expect(clock.now - start < .seconds(20), "did not wait for the background child (sleep 30)")
            #expect(result.path == work + "/out.txt")
            let pid = try #require(pids.get().first)
            #expect(await waitUntilGone(pid))
        }
    }

    @Test func drainsAMegabyteOfStderrWithoutDeadlock() async throws {
        try await withTemporaryFolder { folder, work in
            let script = folder + "/chatty.py"
            try """
            import sys
            for i in range(10000):
                sys.stderr.write("e%04d" % i + "x" * 94 + "\\n")
            sys.stderr.write("y" * 300000)
            sys.stderr.flush()
            print("PROGRESS 50 half", flush=True)
            open("r.txt", "w").write("ok")
            print("RESULT r.txt")
            """.write(toFile: script, atomically: true, encoding: .utf8)
            let model = CommandModel(name: "py", executable: "python3", arguments: [script], timeout: .seconds(20))
            let recorder = ProgressRecorder()
            let result = try await model.run(job(work: work), progress: recorder.record)
            #expect(recorder.percents == [50])
            #expect(result.contentType == "text/plain; charset=utf-8")
        }
    }

    @Test func runsTheExampleScriptEndToEnd() async throws {
        try await withTemporaryFolder { folder, work in
            let input = folder + "/input.txt"
            try "the quick brown fox\njumps over the lazy dog\n".write(toFile: input, atomically: true, encoding: .utf8)
            let model = CommandModel(
                name: "caption",
                executable: "python3",
                arguments: [packageRoot + "/Examples/model.py"],
                timeout: .seconds(20)
            )
            try await model.warmUp()
            let recorder = ProgressRecorder()
            let result = try await model.run(
                job(["prompt": .string("a fox"), "steps": .number(3)], model: "caption", work: work, input: input),
                progress: recorder.record
            )
            #expect(recorder.percents == [0, 30, 60, 90, 100])
            #expect(result.path == work + "/caption.json")
            #expect(result.contentType == "application/json")
            let caption = try JSONDecoder().decode(
                JSONValue.self,
                from: Data(contentsOf: URL(fileURLWithPath: result.path))
            )
            #expect(caption["caption"] == .string("a text of 2 lines and 9 words"))
            #expect(caption["jobId"] == .string("job-1"))

            let error = await #expect(throws: ModelError.self) {
                _ = try await model.run(job(["fail": .string("CUDA out of memory")], work: work)) { _, _ in }
            }
            #expect(error?.message == "command exited with status 1: job job-1 for model test\nCUDA out of memory")
        }
    }

    @Test func warmUpChecksTheExecutable() async throws {
        try await CommandModel(name: "sh", executable: "sh", arguments: [], timeout: nil).warmUp()
        await #expect(
            throws: ModelError(message: "/no/such/model does not exist or is not executable", isRetryable: false)
        ) {
            try await CommandModel(name: "x", executable: "/no/such/model", arguments: [], timeout: nil).warmUp()
        }
        await #expect(throws: ModelError.self) {
            try await CommandModel(name: "x", executable: "no-such-model-binary", arguments: [], timeout: nil).warmUp()
        }
    }

    @Test(
        arguments: [
            ("PROGRESS 42 denoising step 3", .progress(42, "denoising step 3")),
            ("PROGRESS 7", .progress(7, "")),
            ("PROGRESS 150 over", .progress(100, "over")),
            ("PROGRESS 12.6 x", .progress(13, "x")),
            ("PROGRESS soon", .log("PROGRESS soon")),
            (#"{"progress": 42, "message": "m"}"#, .progress(42, "m")),
            ("RESULT out.wav", .result(.init(path: "out.wav"))),
            ("RESULT out.wav audio/wav", .result(.init(path: "out.wav", contentType: "audio/wav"))),
            (
                #"{"result": "a b.png", "contentType": "image/png", "summary": "s"}"#,
                .result(.init(path: "a b.png", contentType: "image/png", summary: "s"))
            ),
            (#"{"loss": 0.1}"#, .log(#"{"loss": 0.1}"#)),
            ("RESULT", .log("RESULT")),
            ("hello", .log("hello")),
        ] as [(String, CommandOutputLine)]
    )
    func classifiesOutputLines(line: String, expected: CommandOutputLine) {
        #expect(CommandOutputLine(line) == expected)
    }

    @Test func splitsLinesAndCutsLongOnes() {
        var splitter = LineSplitter(maxLineLength: 5)
        #expect(splitter.append(Array("ab\r\ncd".utf8)) == ["ab"])
        #expect(splitter.append(Array("e\n1234567890\nxy".utf8)) == ["cde", "12345…"])
        #expect(splitter.finish() == "xy")
        #expect(splitter.finish() == nil)
    }
}

/// Process ids a progress closure saw.
final class PIDBox: Sendable {
    private let pids = Mutex<[pid_t]>([])
    func set(_ value: [pid_t]) { pids.withLock { $0 = value } }
    func get() -> [pid_t] { pids.withLock { $0 } }
}
