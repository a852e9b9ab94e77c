import AsyncHTTPClient
import Foundation
import MartletJobs
import MartletRuntime
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Where a Martlet application listens, and the key its client presents.
public struct JobClientConfiguration: Sendable {
    /// The HTTP API's base URL, e.g. `http://127.0.0.1:3000` or a deployed stage's URL.
    public var httpURL: String
    /// The WebSocket API's URL, e.g. `ws://127.0.0.1:3001` or `wss://…/prod`.
    public var webSocketURL: String
    public var key: String
    /// How long to keep trying to reconnect a dropped WebSocket before giving up.
    public var reconnectWindow: Duration = .seconds(60)
    /// While resuming after a reconnect, how often to ask for the job's status.
    public var statusInterval: Duration = .seconds(1)

    public init(httpURL: String, webSocketURL: String, key: String) {
        self.httpURL = httpURL.hasSuffix("/") ? String(httpURL.dropLast()) : httpURL
        self.webSocketURL = webSocketURL
        self.key = key
    }
}

/// What a run reports as it goes.
public enum JobClientEvent: Sendable, Equatable {
    case uploading(fileName: String, bytes: Int)
    case uploaded(key: String)
    case connected(reconnect: Bool)
    case accepted(jobId: String, duplicate: Bool)
    /// The job's state and progress (0…100), with the worker's message.
    case update(state: JobState, progress: Int, message: String?)
    case connectionLost(reason: String)
    case downloading(url: String)
    case downloaded(path: String, bytes: Int, contentType: String?)
}

/// Why a run did not end with a downloaded result. `exitCode` is what `martlet client` exits with.
public enum JobClientError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The key was refused (401 without one, 403 for a wrong one).
    case keyRefused(status: Int, message: String)
    /// An API could not be reached.
    case unreachable(String)
    /// The application refused the request (for example invalid parameters).
    case requestRefused(code: String, message: String)
    case jobFailed(jobId: String, message: String)
    case jobCancelled(jobId: String)
    case timedOut(jobId: String?)
    case transferFailed(String)

    public var description: String {
        switch self {
        case .keyRefused(let status, let message): "the key was refused (HTTP \(status)): \(message)"
        case .unreachable(let detail): "cannot reach the application: \(detail)"
        case .requestRefused(let code, let message): "the request was refused (\(code)): \(message)"
        case .jobFailed(let jobId, let message): "job \(jobId) failed: \(message)"
        case .jobCancelled(let jobId): "job \(jobId) was cancelled"
        case .timedOut(let jobId): jobId.map { "job \($0) did not finish in time" } ?? "no answer in time"
        case .transferFailed(let detail): detail
        }
    }

    /// 1 job failed or cancelled, 3 key refused, 4 unreachable, 5 request refused, 6 timed out, 7 transfer failed.
    public var exitCode: Int32 {
        switch self {
        case .jobFailed, .jobCancelled: 1
        case .keyRefused: 3
        case .unreachable: 4
        case .requestRefused: 5
        case .timedOut: 6
        case .transferFailed: 7
        }
    }
}

/// What a finished run produced.
public struct JobOutcome: Sendable, Equatable {
    public var jobId: String
    /// Where the result was saved, its size and type.
    public var path: String
    public var bytes: Int
    public var contentType: String?
    /// The presigned URL it came from.
    public var url: String
}

/// Runs one job against a Martlet application the way its clients do: optionally uploads an input
/// through a presigned URL, submits over the WebSocket, follows progress (reconnecting and resuming
/// by status after a dropped connection), and downloads the result.
public struct JobClient: Sendable {
    public let configuration: JobClientConfiguration
    let http: HTTPClient

    public init(configuration: JobClientConfiguration, http: HTTPClient = .shared) {
        self.configuration = configuration
        self.http = http
    }

    /// Submits `request` (with `input` uploaded first, when given), waits for the job to end, and
    /// saves its result to `output` (a file path; a folder gets the result's own file name). Throws a
    /// ``JobClientError``.
    public func run(
        model: String, parameters: [String: JSONValue], input: String? = nil, output: String, timeout: Duration = .seconds(600),
        onConnection: @escaping @Sendable (WebSocketConnection) -> Void = { _ in },
        onEvent: @escaping @Sendable (JobClientEvent) -> Void = { _ in }
    ) async throws -> JobOutcome {
        do {
            return try await withThrowingTaskGroup(of: JobOutcome?.self) { group in
                group.addTask {
                    var inputKey: String?
                    if let input { inputKey = try await self.upload(input, onEvent: onEvent) }
                    let submit = SubmitMessage(model: model, parameters: parameters, inputKey: inputKey, idempotencyKey: UUID().uuidString.lowercased())
                    let (jobId, result) = try await self.follow(submit, onConnection: onConnection, onEvent: onEvent)
                    return try await self.download(jobId: jobId, result, to: output, onEvent: onEvent)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let outcome = try await group.next() ?? nil else { throw JobClientError.timedOut(jobId: nil) }
                return outcome
            }
        } catch let error as JobClientError {
            throw error
        } catch {
            throw JobClientError.transferFailed("\(error)")
        }
    }

    // MARK: Upload

    /// Uploads a file through the application's presigned PUT URL; returns the key to submit.
    func upload(_ path: String, onEvent: @Sendable (JobClientEvent) -> Void) async throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw JobClientError.transferFailed("cannot read \(path)") }
        let fileName = (path as NSString).lastPathComponent
        let contentType = Self.contentType(forFileName: fileName)
        let body = try JSONEncoder().encode(["contentType": contentType, "fileName": fileName])
        let (status, answer) = try await callHTTP(.POST, "/uploads", body: body)
        guard status == 200, let target = try? JSONDecoder().decode(UploadTarget.self, from: answer) else {
            throw Self.refusal(status, answer)
        }
        guard data.count <= target.maxBytes else {
            throw JobClientError.requestRefused(code: "EntityTooLarge", message: "\(fileName) is \(data.count) bytes; uploads are limited to \(target.maxBytes)")
        }
        onEvent(.uploading(fileName: fileName, bytes: data.count))
        var request = HTTPClientRequest(url: target.putURL)
        request.method = .PUT
        request.headers.add(name: "Content-Type", value: contentType)
        request.body = .bytes(ByteBuffer(data: data))
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(300))
        } catch {
            throw JobClientError.unreachable("storage at \(target.putURL.prefix(while: { $0 != "?" })): \(error)")
        }
        let reply = try await response.body.collect(upTo: 64 * 1024)
        guard response.status.code == 200 else {
            throw JobClientError.transferFailed("the upload was refused (HTTP \(response.status.code)): \(Self.s3Message(String(buffer: reply)))")
        }
        onEvent(.uploaded(key: target.key))
        return target.key
    }

    // MARK: WebSocket

    struct SubmitMessage: Encodable {
        var action = "submit"
        var model: String
        var parameters: [String: JSONValue]
        var inputKey: String?
        var idempotencyKey: String
    }

    /// Submits over the WebSocket and follows the job to its end; returns its `result` message.
    func follow(
        _ submit: SubmitMessage, onConnection: @Sendable (WebSocketConnection) -> Void, onEvent: @Sendable (JobClientEvent) -> Void
    ) async throws -> (String, ClientMessage) {
        var jobId: String?
        var reconnecting = false
        var lostAt: ContinuousClock.Instant?
        var backoff: Duration = .milliseconds(250)
        while true {
            let connection: WebSocketConnection
            do {
                connection = try await connect()
            } catch let error as JobClientError {
                // A refused key is final; an unreachable endpoint is retried while resuming.
                guard case .unreachable = error, let since = lostAt, ContinuousClock.now - since < configuration.reconnectWindow else { throw error }
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
                continue
            }
            backoff = .milliseconds(250)
            onConnection(connection)
            onEvent(.connected(reconnect: reconnecting))
            // Without a job id yet, (re)submit: the idempotency key makes a resubmit return the same job.
            if let jobId {
                try? await connection.send(Self.statusMessage(jobId))
            } else {
                try? await connection.send(String(decoding: try JSONEncoder().encode(submit), as: UTF8.self))
            }
            // After a reconnect, pushes go to the old connection: poll the status until the job ends.
            let poller: Task<Void, Never>? = reconnecting ? Task { [interval = configuration.statusInterval, known = jobId] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    if let known { try? await connection.send(Self.statusMessage(known)) }
                }
            } : nil
            defer { poller?.cancel() }
            for await event in connection.events {
                guard case .text(let text) = event, let message = try? JSONDecoder().decode(ClientMessage.self, from: Data(text.utf8)) else {
                    if case .closed(_, let reason) = event { onEvent(.connectionLost(reason: reason)) }
                    continue
                }
                if let id = message.jobId, let jobId, id != jobId { continue }
                switch message.type {
                case .accepted:
                    jobId = message.jobId
                    onEvent(.accepted(jobId: message.jobId ?? "", duplicate: message.duplicate ?? false))
                    if let job = message.job { onEvent(.update(state: job.state, progress: job.progress, message: job.message)) }
                case .progress:
                    onEvent(.update(state: .running, progress: message.progress ?? 0, message: message.message))
                case .status:
                    guard let job = message.job else { continue }
                    onEvent(.update(state: job.state, progress: job.progress, message: job.message ?? message.message))
                    if job.state == .cancelled { throw JobClientError.jobCancelled(jobId: job.jobId) }
                    if job.state == .failed { throw JobClientError.jobFailed(jobId: job.jobId, message: job.error ?? job.message ?? "failed") }
                case .result:
                    onEvent(.update(state: .succeeded, progress: 100, message: message.job?.message))
                    await connection.close()
                    return (message.jobId ?? jobId ?? "", message)
                case .failed:
                    await connection.close()
                    throw JobClientError.jobFailed(jobId: message.jobId ?? jobId ?? "", message: message.message ?? message.job?.error ?? "failed")
                case .error:
                    if message.code == "NotFound", jobId != nil, message.jobId != jobId { continue }
                    await connection.close()
                    throw JobClientError.requestRefused(code: message.code ?? "Error", message: message.message ?? "refused")
                }
            }
            // The connection dropped before the job ended: reconnect and resume.
            if lostAt == nil || !reconnecting { lostAt = .now }
            reconnecting = true
            try await Task.sleep(for: backoff)
        }
    }

    func connect() async throws -> WebSocketConnection {
        let separator = configuration.webSocketURL.contains("?") ? "&" : "?"
        let url = configuration.webSocketURL + separator + "key=" + Self.queryEscaped(configuration.key)
        do {
            return try await WebSocketClient.connect(to: url)
        } catch let error as WebSocketClientError {
            switch error {
            case .refused(let status, let body) where status == 401 || status == 403:
                throw JobClientError.keyRefused(status: status, message: Self.message(in: Data(body.utf8)) ?? body)
            case .refused(let status, let body):
                throw JobClientError.unreachable("the WebSocket API at \(configuration.webSocketURL) answered HTTP \(status): \(body)")
            case .invalidURL(let url):
                throw JobClientError.unreachable("\(url) is not a ws:// or wss:// URL")
            default:
                throw JobClientError.unreachable("the WebSocket API at \(configuration.webSocketURL): \(error)")
            }
        }
    }

    static func statusMessage(_ jobId: String) -> String {
        String(decoding: (try? JSONEncoder().encode(["action": "status", "jobId": jobId])) ?? Data(), as: UTF8.self)
    }

    // MARK: Download

    /// Streams the result to `output` (written beside it, then renamed into place).
    func download(jobId: String, _ result: ClientMessage, to output: String, onEvent: @Sendable (JobClientEvent) -> Void) async throws -> JobOutcome {
        guard let url = result.url else { throw JobClientError.transferFailed("job \(jobId) succeeded without a result URL") }
        var isFolder: ObjCBool = false
        var path = output
        if FileManager.default.fileExists(atPath: output, isDirectory: &isFolder), isFolder.boolValue {
            let name = url.split(separator: "?")[0].split(separator: "/").last.map(String.init)?.removingPercentEncoding ?? "result"
            path = (output as NSString).appendingPathComponent("\(jobId)-\(name)")
        }
        onEvent(.downloading(url: url))
        let response: HTTPClientResponse
        do {
            response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(300))
        } catch {
            throw JobClientError.unreachable("storage at \(url.prefix(while: { $0 != "?" })): \(error)")
        }
        guard response.status.code == 200 else {
            let body = try await response.body.collect(upTo: 64 * 1024)
            throw JobClientError.transferFailed("the download was refused (HTTP \(response.status.code)): \(Self.s3Message(String(buffer: body)))")
        }
        let partial = path + ".part-\(UInt32.random(in: 0...UInt32.max))"
        guard FileManager.default.createFile(atPath: partial, contents: nil), let file = FileHandle(forWritingAtPath: partial) else {
            throw JobClientError.transferFailed("cannot write \(path)")
        }
        var bytes = 0
        do {
            defer { try? file.close() }
            for try await chunk in response.body {
                try file.write(contentsOf: Data(buffer: chunk, byteTransferStrategy: .noCopy))
                bytes += chunk.readableBytes
            }
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw JobClientError.transferFailed("the download of \(url.prefix(while: { $0 != "?" })) broke off: \(error)")
        }
        if rename(partial, path) != 0 {
            try? FileManager.default.removeItem(atPath: partial)
            throw JobClientError.transferFailed("cannot write \(path)")
        }
        let contentType = result.contentType ?? response.headers.first(name: "Content-Type")
        onEvent(.downloaded(path: path, bytes: bytes, contentType: contentType))
        return JobOutcome(jobId: jobId, path: path, bytes: bytes, contentType: contentType, url: url)
    }

    // MARK: HTTP API

    /// Calls the HTTP API with the key; returns the status and body.
    func callHTTP(_ method: HTTPMethod, _ path: String, body: Data? = nil) async throws -> (Int, Data) {
        var request = HTTPClientRequest(url: configuration.httpURL + path)
        request.method = method
        request.headers.add(name: "x-api-key", value: configuration.key)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        do {
            let response = try await http.execute(request, timeout: .seconds(30))
            let answer = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), Data(buffer: answer))
        } catch {
            throw JobClientError.unreachable("the HTTP API at \(configuration.httpURL): \(error)")
        }
    }

    static func refusal(_ status: Int, _ body: Data) -> JobClientError {
        let message = message(in: body) ?? String(decoding: body, as: UTF8.self)
        if status == 401 || status == 403 { return .keyRefused(status: status, message: message) }
        let code = (try? JSONDecoder().decode([String: String].self, from: body))?["code"] ?? "HTTP\(status)"
        return .requestRefused(code: code, message: message)
    }

    static func message(in body: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return nil }
        return object["message"] as? String ?? object["Message"] as? String
    }

    /// The `<Message>` of an S3 XML error, or the body as it is.
    static func s3Message(_ body: String) -> String {
        guard let start = body.range(of: "<Message>"), let end = body.range(of: "</Message>", range: start.upperBound..<body.endIndex) else { return body }
        return String(body[start.upperBound..<end.lowerBound])
    }

    static func queryEscaped(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    /// A content type for an upload, from its file name.
    static func contentType(forFileName name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "wav": "audio/wav"
        case "mp3": "audio/mpeg"
        case "flac": "audio/flac"
        case "ogg": "audio/ogg"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "webp": "image/webp"
        case "mp4": "video/mp4"
        case "webm": "video/webm"
        case "txt": "text/plain"
        case "json": "application/json"
        default: "application/octet-stream"
        }
    }
}
