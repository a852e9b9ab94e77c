import Logging
import MartletRuntime
import MartletTestSupport
import Testing

@Suite("Lambda-style logging")
struct LoggingTests {
    private func logger(_ format: LogFormat, level: Logger.Level = .info, into recorder: LineRecorder) -> Logger {
        var logger = Logger(label: "fn") { LambdaLogHandler(label: $0, format: format, level: level, sink: recorder.sink) }
        logger[metadataKey: LogKey.requestID] = "req-1"
        return logger
    }

    @Test("Text lines are timestamp, request id, level and message, tab-separated")
    func textFormat() throws {
        let recorder = LineRecorder()
        logger(.text, into: recorder).warning("disk \"full\"", metadata: ["job.id": "j1"])
        let line = try #require(recorder.lines.first)
        let fields = line.dropLast().split(separator: "\t", omittingEmptySubsequences: false)
        #expect(fields.count == 4)
        #expect(fields[0].count == 24 && fields[0].hasSuffix("Z"))
        #expect(fields[1] == "req-1" && fields[2] == "WARN")
        #expect(fields[3] == "disk \"full\" job.id=j1")
    }

    @Test("JSON lines carry timestamp, level, requestId, message and metadata, escaped")
    func jsonFormat() throws {
        let recorder = LineRecorder()
        logger(.json, into: recorder).error("line\nbreak \"quoted\"", metadata: ["job.id": "j1", "attempt": "2"])
        let line = try #require(recorder.lines.first)
        let object = try #require(try parsedJSON(Array(line.utf8)) as? [String: String])
        #expect(object["level"] == "ERROR")
        #expect(object["requestId"] == "req-1")
        #expect(object["message"] == "line\nbreak \"quoted\"")
        #expect(object["job.id"] == "j1")
        #expect(object["timestamp"]?.hasSuffix("Z") == true)
    }

    @Test("The level from AWS_LAMBDA_LOG_LEVEL filters lines")
    func levels() {
        let recorder = LineRecorder()
        let configuration = RuntimeConfiguration(environment: ["AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"])
        #expect(configuration.logFormat == .json)
        #expect(configuration.logLevel == .warning)
        let log = logger(.json, level: configuration.logLevel, into: recorder)
        log.info("hidden")
        log.debug("hidden")
        log.error("shown")
        #expect(recorder.lines.count == 1)
    }

    @Test("Configuration reads Lambda's variables; several invocations at once force JSON logs")
    func configuration() {
        let plain = RuntimeConfiguration(environment: ["AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "_HANDLER": "echo"])
        #expect(plain.runtimeAPI == "127.0.0.1:9001")
        #expect(plain.handler == "echo")
        #expect(plain.logFormat == .text)
        #expect(plain.logLevel == .info)
        #expect(plain.maxConcurrency == 1)
        let managed = RuntimeConfiguration(environment: ["AWS_LAMBDA_MAX_CONCURRENCY": "8"])
        #expect(managed.maxConcurrency == 8)
        #expect(managed.logFormat == .json)
    }

    @Test("JSON strings escape quotes, backslashes and control characters")
    func jsonEscaping() {
        #expect(JSONString.quoted("plain") == "\"plain\"")
        #expect(JSONString.quoted("a\"b\\c\n\u{01}") == #""a\"b\\c\n\u0001""#)
        #expect(JSONString.quoted("naïve ✓") == "\"naïve ✓\"")
    }

    @Test("Errors become Lambda's error JSON with a Category.Reason header")
    func functionErrors() {
        struct QuotaExceeded: Error {}
        let error = FunctionError(QuotaExceeded())
        #expect(error.errorType == "QuotaExceeded")
        #expect(error.headerValue == "Function.QuotaExceeded")
        #expect(FunctionError(errorType: "Runtime.X", errorMessage: "m").headerValue == "Runtime.X")
        #expect(FunctionError(errorType: "T", errorMessage: "m\"", stackTrace: ["a"]).json == #"{"errorMessage":"m\"","errorType":"T","stackTrace":["a"]}"#)
    }
}
