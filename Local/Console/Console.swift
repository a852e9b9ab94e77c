import Foundation
import NIOCore
import NIOHTTP1

/// The local stack's console: the web demo (static files), the addresses a page connects to, and a
/// live view of the stack — functions, queues and workers.
///
/// - `GET /_martlet/config`: `{"httpAPI", "webSocket", "endpoint", "key", "local": true}`
/// - `GET /_martlet/state`: a ``ConsoleState``
/// - `GET /_martlet/metrics`: the functions' and workers' metrics (a ``MetricsCollector/Snapshot``)
/// - anything else: a file of the static folder (`/` is `index.html`)
public struct Console: Sendable {
    /// What a page needs to reach the application.
    public struct Configuration: Sendable, Codable, Equatable {
        public var httpAPI: String
        public var webSocket: String
        public var endpoint: String
        public var key: String
        public var local = true

        public init(httpAPI: String, webSocket: String, endpoint: String, key: String) {
            self.httpAPI = httpAPI
            self.webSocket = webSocket
            self.endpoint = endpoint
            self.key = key
        }
    }

    /// The static folder (nil serves no files), the configuration, and a source of live state.
    let staticFolder: String?
    let configuration: Configuration
    let state: @Sendable () async -> ConsoleState
    let metrics: @Sendable () -> MetricsCollector.Snapshot?

    public init(
        staticFolder: String?, configuration: Configuration, metrics: @escaping @Sendable () -> MetricsCollector.Snapshot? = { nil },
        state: @escaping @Sendable () async -> ConsoleState
    ) {
        self.staticFolder = staticFolder.map { ($0 as NSString).standardizingPath }
        self.configuration = configuration
        self.metrics = metrics
        self.state = state
    }

    public func answer(_ request: HTTPServerRequest) async -> HTTPServerResponse {
        guard request.method == .GET || request.method == .HEAD else {
            return .json(.methodNotAllowed, #"{"message":"Method Not Allowed"}"#, headers: ["Allow": "GET, HEAD"])
        }
        var response: HTTPServerResponse
        switch request.path {
        case "/_martlet/config": response = Self.json(configuration)
        case "/_martlet/state": response = Self.json(await state())
        case "/_martlet/metrics":
            if let snapshot = metrics() { response = Self.json(snapshot) } else { response = file(at: "/_martlet/metrics") }
        default: response = file(at: String(request.path))
        }
        response.isHead = request.method == .HEAD
        return response
    }

    /// A file of the static folder; never one outside it.
    func file(at requestPath: String) -> HTTPServerResponse {
        let notFound = HTTPServerResponse.json(.notFound, #"{"message":"Not Found"}"#)
        guard let staticFolder, let decoded = requestPath.removingPercentEncoding, !decoded.contains("\0") else { return notFound }
        let segments = decoded.split(separator: "/")
        guard !segments.contains(where: { $0 == ".." || $0.hasPrefix(".") }) else { return notFound }
        var path = staticFolder + "/" + segments.joined(separator: "/")
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return notFound }
        if isFolder.boolValue { path += "/index.html" }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path), attributes[.type] as? FileAttributeType == .typeRegular,
            let size = (attributes[.size] as? NSNumber)?.int64Value
        else { return notFound }
        let headers: HTTPHeaders = [
            "Content-Type": Self.contentType(of: path), "Content-Length": String(size), "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        ]
        return HTTPServerResponse(status: .ok, headers: headers, file: .init(path: path, offset: 0, length: size))
    }

    static func json(_ value: some Encodable) -> HTTPServerResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return .json(.ok, text, headers: ["Cache-Control": "no-store"])
    }

    static func contentType(of path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "html", "htm": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "json": "application/json"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "ico": "image/x-icon"
        case "wav": "audio/wav"
        case "txt", "md": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }
}

/// The live view of the local stack.
public struct ConsoleState: Sendable, Codable, Equatable {
    public struct Function: Sendable, Codable, Equatable {
        public var name: String
        public var invocations: Int
        public var coldStarts: Int
        public var errors: Int
        public var environments: Int
        public var busy: Int
        public var queued: Int
    }

    public struct Worker: Sendable, Codable, Equatable {
        public struct RunningJob: Sendable, Codable, Equatable {
            public var jobId: String
            public var model: String
            public var progress: Int
        }

        public var id: String
        public var pid: Int32?
        /// `starting` (not yet ready), `running`, `stopping` or `restarting` (exited; starting again).
        public var status: String
        public var ready: Bool
        public var jobs: [RunningJob]
    }

    public var uptimeSeconds: Double
    public var functions: [Function]
    public var queues: [SQSService.QueueStatistics]
    public var workers: [Worker]
}
