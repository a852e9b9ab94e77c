import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How Lambda's log lines look: `Text` (the default) or `JSON` (`AWS_LAMBDA_LOG_FORMAT=JSON`).
public enum LogFormat: String, Sendable {
    case text = "Text"
    case json = "JSON"
}

/// A swift-log handler that prints lines as Lambda's managed runtimes do, to stdout, one write per line.
///
/// Text: `2025-01-15T12:00:00.000Z\t<request id>\tINFO\tmessage key=value`
/// JSON: `{"timestamp":"…","level":"INFO","requestId":"…","message":"…", …metadata}`
public struct LambdaLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: LogFormat
    private let sink: @Sendable (String) -> Void

    /// - Parameters:
    ///   - sink: where finished lines go; standard output by default.
    public init(
        label: String,
        format: LogFormat,
        level: Logger.Level,
        sink: @escaping @Sendable (String) -> Void = LambdaLogHandler.writeToStandardOutput
    ) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let requestID = merged.removeValue(forKey: LogKey.requestID).map { "\($0)" }
        let timestamp = WallClock.iso8601(milliseconds: WallClock.nowMilliseconds)
        switch format {
        case .text:
            sink(Self.textLine(timestamp: timestamp, requestID: requestID, level: event.level, message: "\(event.message)", metadata: merged))
        case .json:
            sink(Self.jsonLine(timestamp: timestamp, requestID: requestID, level: event.level, message: "\(event.message)", metadata: merged))
        }
    }

    static func textLine(timestamp: String, requestID: String?, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "\(timestamp)\t\(requestID ?? "undefined")\t\(level.lambdaName)\t\(message)"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(value)"
        }
        return line + "\n"
    }

    static func jsonLine(timestamp: String, requestID: String?, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "{\"timestamp\":\"\(timestamp)\",\"level\":\"\(level.lambdaName)\""
        if let requestID {
            line += ",\"requestId\":"
            JSONString.append(requestID, to: &line)
        }
        line += ",\"message\":"
        JSONString.append(message, to: &line)
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where !["timestamp", "level", "requestId", "message"].contains(key) {
            line += ","
            JSONString.append(key, to: &line)
            line += ":"
            appendJSON(value, to: &line)
        }
        return line + "}\n"
    }

    private static func appendJSON(_ value: Logger.MetadataValue, to line: inout String) {
        switch value {
        case .string(let string): JSONString.append(string, to: &line)
        case .stringConvertible(let convertible): JSONString.append(convertible.description, to: &line)
        case .array(let values):
            line += "["
            for (index, element) in values.enumerated() {
                if index > 0 { line += "," }
                appendJSON(element, to: &line)
            }
            line += "]"
        case .dictionary(let dictionary):
            line += "{"
            for (index, (key, element)) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { line += "," }
                JSONString.append(key, to: &line)
                line += ":"
                appendJSON(element, to: &line)
            }
            line += "}"
        }
    }

    /// Writes a finished line to standard output in one `write(2)`, so concurrent lines never interleave.
    @Sendable public static func writeToStandardOutput(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 {
                    if written < 0 && errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

extension Logger.Level {
    /// Lambda's name for the level: TRACE, DEBUG, INFO, WARN, ERROR, FATAL.
    public var lambdaName: String {
        switch self {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARN"
        case .error: "ERROR"
        case .critical: "FATAL"
        }
    }

    /// Parses `AWS_LAMBDA_LOG_LEVEL` (case-insensitive); `nil` for an unknown value.
    public init?(lambdaName: String) {
        switch lambdaName.uppercased() {
        case "TRACE": self = .trace
        case "DEBUG": self = .debug
        case "INFO": self = .info
        case "WARN", "WARNING": self = .warning
        case "ERROR": self = .error
        case "FATAL", "CRITICAL": self = .critical
        default: return nil
        }
    }
}
