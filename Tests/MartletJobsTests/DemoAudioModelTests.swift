import MartletRuntime
import Foundation
import Testing

@testable import MartletWorker

@Suite struct DemoAudioModelTests {
    let model = DemoAudioModel()

    private func render(_ parameters: [String: JSONValue], work: String) async throws -> Data {
        let result = try await model.run(job(parameters, work: work)) { _, _ in }
        return try Data(contentsOf: URL(fileURLWithPath: result.path))
    }

    @Test func writesAValidWAVFileAsLongAsAsked() async throws {
        try await withTemporaryFolder { _, work in
            let result = try await model.run(
                job(["prompt": .string("rain on a tin roof"), "seconds": .number(1.5)], work: work)
            ) { _, _ in }
            #expect(result.contentType == "audio/wav")
            #expect(result.path == work + "/audio.wav")
            #expect(result.summary == "1.5 s of audio at 22050 Hz from \"rain on a tin roof\"")
            let data = try Data(contentsOf: URL(fileURLWithPath: result.path))
            let header = try #require(WAVHeader(data))
            #expect(header.format == 1)
            #expect(header.channels == 1)
            #expect(header.sampleRate == 22050)
            #expect(header.byteRate == 44100)
            #expect(header.blockAlign == 2)
            #expect(header.bitsPerSample == 16)
            #expect(header.dataSize == 33075 * 2)
            #expect(Int(header.riffSize) == data.count - 8)
            #expect(data.count == 44 + 33075 * 2)

            // Audible, and the soft limiter keeps it from clipping.
            let samples = data.dropFirst(44).withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
            let peak = samples.map { abs(Int($0)) }.max() ?? 0
            #expect(peak > 3000)
            #expect(peak < 32767)
        }
    }

    @Test func pythonsWaveModuleReadsTheFile() async throws {
        try await withTemporaryFolder { _, work in
            let result = try await model.run(job(["prompt": .string("oracle"), "seconds": .number(1)], work: work)) {
                _,
                _ in
            }
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            python.arguments = [
                "python3", "-c",
                "import sys, wave; w = wave.open(sys.argv[1]); "
                    + "print(w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes(), "
                    + "len(w.readframes(-1)))",
                result.path,
            ]
            let output = Pipe()
            python.standardOutput = output
            try python.run()
            let printed = output.fileHandleForReading.readDataToEndOfFile()
            python.waitUntilExit()
            #expect(String(decoding: printed, as: UTF8.self) == "1 2 22050 22050 44100\n")
        }
    }

    @Test func honoursTheSampleRate() async throws {
        try await withTemporaryFolder { _, work in
            let data = try await render(
                ["prompt": .string("x"), "seconds": .number(0.5), "sampleRate": .number(8000)],
                work: work
            )
            let header = try #require(WAVHeader(data))
            #expect(header.sampleRate == 8000)
            #expect(header.dataSize == 4000 * 2)
        }
    }

    @Test func isDeterministicForThePromptSeedAndLength() async throws {
        try await withTemporaryFolder { _, work in
            let parameters: [String: JSONValue] = ["prompt": .string("a calm piano by the sea"), "seconds": .number(1)]
            let first = try await render(parameters, work: work)
            let second = try await render(parameters, work: work)
            #expect(first == second)

            var reseeded = parameters
            reseeded["seed"] = .number(7)
            let reseededData = try await render(reseeded, work: work)
            #expect(reseededData != first)

            var reworded = parameters
            reworded["prompt"] = .string("a calm piano by the lake")
            let rewordedData = try await render(reworded, work: work)
            #expect(rewordedData != first)
        }
    }

    @Test func reportsProgressInTenIncreasingSteps() async throws {
        try await withTemporaryFolder { _, work in
            let recorder = ProgressRecorder()
            _ = try await model.run(
                job(["prompt": .string("birdsong"), "seconds": .number(3)], work: work),
                progress: recorder.record
            )
            #expect(recorder.percents == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
            #expect(recorder.messages.first == "synthesizing 0.3 s / 3.0 s")
            #expect(recorder.messages.last == "wrote 3.0 s of audio")
        }
    }

    @Test func stopsWhenProgressReportsCancellation() async throws {
        try await withTemporaryFolder { _, work in
            let recorder = ProgressRecorder { percent, _ in if percent == 30 { throw CancellationError() } }
            await #expect(throws: CancellationError.self) {
                _ = try await model.run(job(["prompt": .string("drums")], work: work), progress: recorder.record)
            }
            #expect(recorder.percents == [10, 20, 30])
            let left = try FileManager.default.contentsOfDirectory(atPath: work)
            #expect(left.isEmpty)
        }
    }

    @Test func removesItsFileWhenCancelledAtTheLastStep() async throws {
        try await withTemporaryFolder { _, work in
            let recorder = ProgressRecorder { percent, _ in if percent == 100 { throw CancellationError() } }
            await #expect(throws: CancellationError.self) {
                _ = try await model.run(
                    job(["prompt": .string("drums"), "seconds": .number(0.5)], work: work),
                    progress: recorder.record
                )
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: work)
            #expect(left.isEmpty)
        }
    }

    @Test func stopsWhenItsTaskIsCancelled() async throws {
        try await withTemporaryFolder { _, work in
            let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
            let model = model
            let task = Task {
                try await model.run(
                    job(["prompt": .string("slow"), "stepMilliseconds": .number(200)], work: work)
                ) { _, _ in startedContinuation.yield() }
            }
            for await _ in started { break }
            let clock = ContinuousClock()
            let start = clock.now
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            #expect(clock.now - start < .seconds(1))
        }
    }

    @Test func failsAfterTheFirstStepWhenAskedTo() async throws {
        try await withTemporaryFolder { _, work in
            let recorder = ProgressRecorder()
            await #expect(throws: ModelError(message: "GPU fell off the bus", isRetryable: true)) {
                _ = try await model.run(
                    job(["prompt": .string("x"), "failWith": .string("GPU fell off the bus")], work: work),
                    progress: recorder.record
                )
            }
            #expect(recorder.percents == [10])
        }
    }

    @Test func sleepsPerStepWhenAskedTo() async throws {
        try await withTemporaryFolder { _, work in
            let clock = ContinuousClock()
            let start = clock.now
            _ = try await render(
                ["prompt": .string("x"), "seconds": .number(0.5), "stepMilliseconds": .number(30)],
                work: work
            )
            #expect(clock.now - start >= .milliseconds(300))
        }
    }

    @Test(
        arguments: [
            ([:], "prompt is required"),
            (["prompt": .string("")], "prompt is required: a string of 1 to 500 characters"),
            (["prompt": .string(String(repeating: "a", count: 501))], "1 to 500 characters"),
            (["prompt": .number(3)], "prompt is required"),
            (["prompt": .string("x"), "seconds": .number(0.2)], "seconds must be a number from 0.5 to 30 (got 0.2)"),
            (["prompt": .string("x"), "seconds": .number(31)], "seconds must be a number from 0.5 to 30 (got 31)"),
            (["prompt": .string("x"), "seconds": .string("3")], "seconds must be a number from 0.5 to 30"),
            (["prompt": .string("x"), "seed": .number(1.5)], "seed must be an integer"),
            (
                ["prompt": .string("x"), "stepMilliseconds": .number(20000)],
                "stepMilliseconds must be an integer from 0 to 10000"
            ),
            (["prompt": .string("x"), "sampleRate": .number(12345)], "sampleRate must be one of"),
            (["prompt": .string("x"), "failWith": .bool(true)], "failWith must be a string"),
        ] as [([String: JSONValue], String)]
    )
    func rejectsBadParameters(parameters: [String: JSONValue], expected: String) async throws {
        try await withTemporaryFolder { _, work in
            let error = await #expect(throws: ModelError.self) {
                _ = try await model.run(job(parameters, work: work)) { _, _ in }
            }
            #expect(error?.isRetryable == false)
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
        }
    }

    @Test func warmsUpQuickly() async throws {
        let clock = ContinuousClock()
        let elapsed = try await clock.measure { try await DemoAudioModel().warmUp() }
        #expect(elapsed < .milliseconds(50))
    }

    @Test func fnv1aMatchesTheReferenceValues() {
        #expect(FNV1a.hash("".utf8) == 0xcbf2_9ce4_8422_2325)
        #expect(FNV1a.hash("a".utf8) == 0xaf63_dc4c_8601_ec8c)
        #expect(FNV1a.hash("foobar".utf8) == 0x8594_4171_f739_67e8)
    }
}

@Suite struct NoopModelTests {
    @Test func writesTheJobIDAtOnce() async throws {
        try await withTemporaryFolder { _, work in
            let recorder = ProgressRecorder()
            let result = try await NoopModel().run(job(work: work), progress: recorder.record)
            #expect(result.contentType == "application/json")
            let object = try JSONDecoder().decode(
                [String: String].self,
                from: Data(contentsOf: URL(fileURLWithPath: result.path))
            )
            #expect(object == ["jobId": "job-1"])
            #expect(recorder.percents == [100])
        }
    }
}
