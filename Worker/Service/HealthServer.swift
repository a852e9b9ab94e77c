import Logging
import MartletRuntime
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

import Foundation

/// What the worker is doing, for its health endpoint and logs.
final class WorkerStatus: Sendable {
    struct Snapshot: Encodable {
        var status: String
        var jobs: [String: RunningJob]
    }

    struct RunningJob: Encodable {
        var model: String
        var progress: Int
    }

    private let state = Mutex<(ready: Bool, stopping: Bool, jobs: [String: RunningJob])>((false, false, [:]))

    func setReady(_ ready: Bool) { state.withLock { $0.ready = ready } }
    func setStopping() { state.withLock { $0.stopping = true } }
    func begin(_ jobId: String, model: String) { state.withLock { $0.jobs[jobId] = RunningJob(model: model, progress: 0) } }
    func progress(_ jobId: String, _ percent: Int) { state.withLock { $0.jobs[jobId]?.progress = percent } }
    func end(_ jobId: String) { state.withLock { _ = $0.jobs.removeValue(forKey: jobId) } }

    /// `ready` only once models are warm and until a stop begins: the container health check's answer.
    var snapshot: Snapshot {
        state.withLock { state in
            Snapshot(status: state.stopping ? "stopping" : state.ready ? "ready" : "warming", jobs: state.jobs)
        }
    }
}

/// `GET /healthz` for the container health check: 200 with the worker's status when ready, 503 while
/// warming up or stopping; `GET /metrics`: the worker's metrics in Prometheus' text format.
struct HealthServer: Sendable {
    let port: Int
    let status: WorkerStatus
    var metrics: EMFMetricsFactory? = nil
    let logger: Logger

    func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let status = self.status
        let metrics = self.metrics
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(HealthHandler(status: status, metrics: metrics)) }
            }
            .bind(host: "0.0.0.0", port: port).get()
        onListening(channel.localAddress?.port ?? port)
        logger.info("Health endpoint listening", metadata: ["port": "\(channel.localAddress?.port ?? port)"])
        try await withTaskCancellationHandler {
            try await channel.closeFuture.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }
}

private final class HealthHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let status: WorkerStatus
    let metrics: EMFMetricsFactory?

    init(status: WorkerStatus, metrics: EMFMetricsFactory?) {
        self.status = status
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let snapshot = status.snapshot
        let path = head.uri.split(separator: "?").first
        let found = path == "/healthz"
        var code: HTTPResponseStatus = !found ? .notFound : snapshot.status == "ready" ? .ok : .serviceUnavailable
        var body = found ? ((try? JSONEncoder().encode(snapshot)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") : "{\"message\":\"Not Found\"}"
        var contentType = "application/json"
        if path == "/metrics", let metrics {
            code = .ok
            body = metrics.prometheusText()
            contentType = "text/plain; version=0.0.4"
        }
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(body.utf8.count))])
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: code, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        let keepAlive = head.isKeepAlive
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in if !keepAlive { loopBound.value.close(promise: nil) } }
    }
}
