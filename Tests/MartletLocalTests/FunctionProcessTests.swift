import Foundation
import Logging
import MartletLocal
import MartletRuntime
import MartletTestSupport
import NIOCore
import Testing

/// These start the real `bootstrap` as a child process, exactly as `martlet invoke` does.
@Suite("Function processes with the real bootstrap")
struct FunctionProcessTests {
    private let logger = Logger(label: "test")

    private func configuration(_ handler: String, timeout: Duration = .seconds(3), command: [String]? = nil) -> FunctionConfiguration {
        FunctionConfiguration(name: handler, handler: handler, command: command ?? [builtProduct("bootstrap")], timeout: timeout)
    }

    @Test("The bootstrap serves a typed handler; the REPORT line has Lambda's fields and an init duration")
    func success() async throws {
        let report = try await FunctionInstance.with(configuration("hello"), output: .lines { _ in }, logger: logger) { instance in
            await instance.invoke(.json(#"{"name":"Ada"}"#))
        }
        #expect(report.outcome.body.text == #"{"message":"Hello, Ada!"}"#)
        let line = report.reportLine
        #expect(line.hasPrefix("REPORT RequestId: \(report.requestID)\tDuration: "))
        #expect(line.contains("\tBilled Duration: ") && line.contains("\tMemory Size: 128 MB\tMax Memory Used: "))
        #expect(line.contains("\tInit Duration: "))
        #expect(report.maxMemoryUsedMB > 0)
    }

    @Test("Warm invocations reuse the process and report no init duration")
    func warm() async throws {
        let (first, second, pid) = try await FunctionInstance.with(configuration("echo"), output: .lines { _ in }, logger: logger) { instance in
            (await instance.invoke(.json("1")), await instance.invoke(.json("2")), instance.processID)
        }
        #expect(first.initDuration != nil)
        #expect(second.initDuration == nil)
        #expect(second.outcome.body.text == "2")
        #expect(pid > 0)
    }

    @Test("The function's logs arrive with the request id")
    func logs() async throws {
        let lines = LineRecorder()
        let report = try await FunctionInstance.with(configuration("hello"), output: .lines(lines.sink), logger: logger) { instance in
            await instance.invoke(.json(#"{"name":"Lin"}"#))
        }
        try await Task.sleep(for: .milliseconds(50))  // the pipe reader runs on its own thread
        #expect(lines.lines.contains { $0.contains("\t\(report.requestID)\tINFO\tGreeting name=Lin") })
    }

    @Test("A timeout kills the process and reports Task timed out")
    func timeout() async throws {
        let (report, exit) = try await FunctionInstance.with(configuration("sleep", timeout: .seconds(1)), output: .lines { _ in }, logger: logger) { instance in
            let report = await instance.invoke(.json(#"{"seconds":5}"#))
            return (report, instance.exitStatus)
        }
        #expect(report.outcome.errorType == "Sandbox.Timedout")
        #expect(report.outcome.body.text.contains("Task timed out after 1.00 seconds"))
        #expect(exit == .signalled(9))
        #expect(report.duration >= .seconds(1) && report.duration < .seconds(5), "cut short: the handler would sleep 5 s")
        #expect(report.reportLine.hasSuffix("\tStatus: timeout"))
    }

    @Test("An unknown handler is an init error returned to the caller")
    func initError() async throws {
        let report = try await FunctionInstance.with(configuration("no-such-handler"), output: .lines { _ in }, logger: logger) { instance in
            await instance.invoke(.json("{}"))
        }
        guard case .initError(let body, "Runtime.NoSuchHandler") = report.outcome else {
            Issue.record("expected Runtime.NoSuchHandler, got \(report.outcome)")
            return
        }
        #expect(body.text.contains("Known handlers: connect, crash, createUpload, disconnect, echo, getJob, getResult, hello, message, sleep, stream, submitJob."))
    }

    @Test("A runtime that crashes mid-invocation is reported with its exit status")
    func crash() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let script = folder.appendingPathComponent("bootstrap")
        // Fetches the invocation, then exits without answering.
        try """
            #!/bin/sh
            python3 -c "import urllib.request,os; urllib.request.urlopen('http://'+os.environ['AWS_LAMBDA_RUNTIME_API']+'/2018-06-01/runtime/invocation/next').read()"
            exit 3
            """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let report = try await FunctionInstance.with(configuration("crash", command: [script.path]), output: .lines { _ in }, logger: logger) { instance in
            await instance.invoke(.json("{}"))
        }
        #expect(report.outcome.errorType == "Runtime.ExitError")
        #expect(report.outcome.body.text.contains("Runtime exited with error: exit status 3"))
    }

    @Test("A runtime that ignores SIGTERM is killed when its environment ends")
    func stubbornRuntime() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-stubborn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let script = folder.appendingPathComponent("bootstrap")
        // Ignores SIGTERM and long-polls `next`, as awslambdaric does.
        try """
            #!/usr/bin/env python3
            import os, signal, urllib.request
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            urllib.request.urlopen('http://' + os.environ['AWS_LAMBDA_RUNTIME_API'] + '/2018-06-01/runtime/invocation/next').read()
            """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let pid = try await FunctionInstance.with(configuration("stubborn", command: [script.path]), output: .lines { _ in }, logger: logger) { instance in
            #expect(await instance.environment.waitUntilReady().map { if case .ready = $0 { true } else { false } } == true)
            return instance.processID
        }
        #expect(kill(pid, 0) == -1)
    }

    @Test("A missing program is a clear error before anything runs")
    func missingProgram() async throws {
        await #expect(throws: LocalError.self) {
            try await FunctionInstance.with(configuration("echo", command: ["/nonexistent/bootstrap"]), logger: logger) { _ in }
        }
        let invalid = FunctionConfiguration(name: "x", handler: "x", command: ["/bin/true"], memorySize: 64)
        #expect(invalid.problem == "memory size must be between 128 and 10240 MB, got 64")
    }
}
