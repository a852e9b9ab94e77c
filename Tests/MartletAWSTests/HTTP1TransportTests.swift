import Foundation
import MartletAWS
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import Testing

/// The AWS transport against a scripted HTTP/1.1 server: keep-alive reuse, streamed bodies both ways
/// with back-pressure, early answers, abandoned bodies, deadlines and TLS.
@Suite struct HTTP1TransportTests {
    @Test func reusesOneConnectionForSequentialRequests() async throws {
        try await withScriptedServer { url, server in
            let transport = HTTP1Transport()
            for index in 0..<20 {
                let response = try await transport.send(request("POST", url, "/echo", body: .bytes(ByteBuffer(string: "hello \(index)"))), timeout: .seconds(5))
                #expect(response.status == 200)
                #expect(String(buffer: try await response.collect(upTo: 1024)) == "hello \(index)")
            }
            #expect(server.connections == 1)
        }
    }

    @Test func concurrentRequestsEachGetTheirOwnAnswer() async throws {
        try await withScriptedServer { url, server in
            let transport = HTTP1Transport()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<16 {
                    group.addTask {
                        for round in 0..<10 {
                            let text = "\(index)-\(round)"
                            let response = try await transport.send(request("POST", url, "/echo", body: .bytes(ByteBuffer(string: text))), timeout: .seconds(5))
                            #expect(String(buffer: try await response.collect(upTo: 1024)) == text)
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(server.connections <= 16)
        }
    }

    @Test func streamsLargeBodiesBothWays() async throws {
        try await withScriptedServer { url, _ in
            let transport = HTTP1Transport()
            let size = 4 * 1024 * 1024
            // Download: 4 MiB read chunk by chunk (the server writes as the client reads).
            let download = try await transport.send(request("GET", url, "/bytes/\(size)"), timeout: .seconds(30))
            var received = 0
            var sum: UInt64 = 0
            for try await chunk in download.body {
                for byte in chunk.readableBytesView { sum &+= UInt64(byte) }
                received += chunk.readableBytes
            }
            #expect(received == size)
            #expect(sum == ScriptedServer.checksum(size))
            // Upload from a file, then from a stream.
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("transport-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let fromFile = try await transport.send(request("PUT", url, "/count", body: .file(path: path, length: Int64(size))), timeout: .seconds(30))
            #expect(String(buffer: try await fromFile.collect(upTo: 100)) == "\(size)")
            let chunks = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
                for start in stride(from: 0, to: size, by: 1_000_000) { continuation.yield(ByteBuffer(bytes: bytes[start..<min(size, start + 1_000_000)])) }
                continuation.finish()
            }
            let fromStream = try await transport.send(request("PUT", url, "/count", body: .stream(chunks, length: Int64(size))), timeout: .seconds(30))
            #expect(String(buffer: try await fromStream.collect(upTo: 100)) == "\(size)")
        }
    }

    /// A server answers once it has the body's last byte, which can be before the client has written
    /// the request's end: the connection still goes back to the pool, for the next request.
    @Test func fileUploadsKeepTheirConnection() async throws {
        try await withScriptedServer { url, server in
            let transport = HTTP1Transport()
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("transport-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            _ = FileManager.default.createFile(atPath: path, contents: Data("{\"jobId\":\"1\"}".utf8))
            for index in 0..<10 {
                // `/early` answers as soon as the head is in, before any of the body.
                let target = index.isMultiple(of: 2) ? "/early" : "/count"
                let upload = try await transport.send(request("PUT", url, target, body: .file(path: path, length: 13)), timeout: .seconds(5))
                #expect(String(buffer: try await upload.collect(upTo: 100)) == (target == "/early" ? "early" : "13"))
                let next = try await transport.send(request("POST", url, "/echo", body: .bytes(ByteBuffer(string: "next"))), timeout: .seconds(5))
                #expect(String(buffer: try await next.collect(upTo: 100)) == "next")
            }
            #expect(server.connections == 1)
        }
    }

    /// A caller running on the connection's own event loop (as the runtime's handlers do): the head
    /// still goes out before the body.
    @Test func uploadsFromTheConnectionsOwnThread() async throws {
        try await withScriptedServer { url, server in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let transport = HTTP1Transport(eventLoopGroup: group)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("transport-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            _ = FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 300_000))
            try await withTaskExecutorPreference(OnLoop(group.next())) {
                for _ in 0..<3 {
                    let upload = try await transport.send(request("PUT", url, "/count", body: .file(path: path, length: 300_000)), timeout: .seconds(5))
                    #expect(upload.status == 200)
                    #expect(String(buffer: try await upload.collect(upTo: 100)) == "300000")
                }
            }
            #expect(server.connections == 1)
            try await group.shutdownGracefully()
        }
    }

    @Test func anEarlyAnswerToALargeUploadIsTheResult() async throws {
        try await withScriptedServer { url, _ in
            let transport = HTTP1Transport()
            let size = 64 * 1024 * 1024
            let chunks = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
                for _ in 0..<(size / 1_048_576) { continuation.yield(ByteBuffer(repeating: 1, count: 1_048_576)) }
                continuation.finish()
            }
            let response = try await transport.send(request("PUT", url, "/refuse", body: .stream(chunks, length: Int64(size))), timeout: .seconds(30))
            #expect(response.status == 413)
            #expect(String(buffer: try await response.collect(upTo: 1024)).contains("EntityTooLarge"))
            // The pool did not keep the half-used connection: the next request works.
            let next = try await transport.send(request("POST", url, "/echo", body: .bytes(ByteBuffer(string: "after"))), timeout: .seconds(5))
            #expect(String(buffer: try await next.collect(upTo: 100)) == "after")
        }
    }

    @Test func anAbandonedBodyClosesItsConnectionAndTheNextRequestWorks() async throws {
        try await withScriptedServer { url, server in
            let transport = HTTP1Transport()
            do {
                let response = try await transport.send(request("GET", url, "/bytes/\(8 * 1024 * 1024)"), timeout: .seconds(5))
                var iterator = response.body.makeAsyncIterator()
                _ = try await iterator.next()
            }
            for _ in 0..<3 {
                let next = try await transport.send(request("POST", url, "/echo", body: .bytes(ByteBuffer(string: "again"))), timeout: .seconds(5))
                #expect(String(buffer: try await next.collect(upTo: 100)) == "again")
            }
            #expect(server.connections == 2)
        }
    }

    @Test func aDeadlineWithoutAnswerThrows() async throws {
        try await withScriptedServer { url, _ in
            let transport = HTTP1Transport()
            let started = ContinuousClock.now
            await #expect(throws: HTTP1TransportError.self) {
                _ = try await transport.send(request("GET", url, "/never"), timeout: .milliseconds(300))
            }
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }

    @Test func aBodyLongerThanDeclaredIsAnErrorNotASuccess() async throws {
        try await withScriptedServer { url, _ in
            let chunks = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
                continuation.yield(ByteBuffer(repeating: 1, count: 600))
                continuation.yield(ByteBuffer(repeating: 2, count: 600))
                continuation.finish()
            }
            await #expect(throws: HTTP1TransportError.self) {
                _ = try await HTTP1Transport().send(request("PUT", url, "/count", body: .stream(chunks, length: 1000)), timeout: .seconds(5))
            }
        }
    }

    @Test func aStalledBodyFailsAfterTheTimeout() async throws {
        try await withScriptedServer { url, _ in
            let response = try await HTTP1Transport().send(request("GET", url, "/stall"), timeout: .milliseconds(400))
            #expect(response.status == 200)
            let started = ContinuousClock.now
            await #expect(throws: HTTP1TransportError.self) { _ = try await response.collect(upTo: 1000) }
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }

    @Test func cancellingTheTaskEndsAWaitAtOnce() async throws {
        try await withScriptedServer { url, _ in
            let transport = HTTP1Transport()
            let started = ContinuousClock.now
            let waiting = Task { try await transport.send(request("GET", url, "/never"), timeout: .seconds(30)) }
            try await Task.sleep(for: .milliseconds(100))
            waiting.cancel()
            await #expect(throws: CancellationError.self) { _ = try await waiting.value }
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }

    @Test func aRefusedConnectionThrows() async throws {
        let transport = HTTP1Transport()
        await #expect(throws: HTTP1TransportError.self) {
            _ = try await transport.send(request("GET", "http://127.0.0.1:1", "/"), timeout: .seconds(2))
        }
        await #expect(throws: HTTP1TransportError.self) {
            _ = try await transport.send(AWSHTTPRequest(method: "GET", url: RequestURL(scheme: "ftp", host: "127.0.0.1"), headers: []), timeout: .seconds(2))
        }
    }

    @Test func headAnswersHaveNoBody() async throws {
        try await withScriptedServer { url, _ in
            let transport = HTTP1Transport()
            for _ in 0..<3 {
                let response = try await transport.send(request("HEAD", url, "/bytes/1000"), timeout: .seconds(5))
                #expect(response.status == 200)
                #expect(response.header("content-length") == "1000")
                #expect(try await response.collect(upTo: 0).readableBytes == 0)
            }
        }
    }

    @Test func speaksTLSAndChecksTheServerName() async throws {
        let certificate = try TestCertificate.make()
        try await withScriptedServer(tls: certificate) { url, server in
            var configuration = HTTP1Transport.Configuration()
            configuration.tls.trustRoots = .certificates([certificate.certificate])
            let transport = HTTP1Transport(configuration: configuration)
            let https = url.replacingOccurrences(of: "http://127.0.0.1", with: "https://localhost")
            for _ in 0..<3 {
                let response = try await transport.send(request("POST", https, "/echo", body: .bytes(ByteBuffer(string: "secret"))), timeout: .seconds(5))
                #expect(String(buffer: try await response.collect(upTo: 100)) == "secret")
            }
            #expect(server.connections == 1)
            // The system's trust roots do not know this certificate: refused.
            await #expect(throws: (any Error).self) {
                _ = try await HTTP1Transport().send(request("GET", https, "/bytes/1"), timeout: .seconds(5))
            }
        }
    }

    private func request(_ method: String, _ base: String, _ path: String, body: RequestBody = .empty) -> AWSHTTPRequest {
        AWSHTTPRequest(method: method, url: RequestURL(string: base + path)!, headers: [("Content-Length", String(body.length))], body: body)
    }
}

/// A self-signed certificate for `localhost`, made with the openssl command.
struct TestCertificate {
    var certificate: NIOSSLCertificate
    var key: NIOSSLPrivateKey

    static func make() throws -> TestCertificate {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", folder.appendingPathComponent("key.pem").path, "-out", folder.appendingPathComponent("cert.pem").path,
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return TestCertificate(
            certificate: try #require(try NIOSSLCertificate.fromPEMFile(folder.appendingPathComponent("cert.pem").path).first),
            key: try NIOSSLPrivateKey(file: folder.appendingPathComponent("key.pem").path, format: .pem)
        )
    }
}

/// An HTTP/1.1 server with scripted paths: `/echo` answers the body, `/count` its length,
/// `/bytes/N` N bytes written as the client reads, `/refuse` 413 at once and closes, `/never` nothing.
final class ScriptedServer: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var path = ""
    private var method = HTTPMethod.GET
    private var body = ByteBuffer()
    private var counted = 0

    static func checksum(_ size: Int) -> UInt64 { (0..<size).reduce(0) { $0 &+ UInt64(UInt8(truncatingIfNeeded: $1 &* 13)) } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri
            method = head.method
            body.clear()
            counted = 0
            if path == "/refuse" {
                respond(context, status: .payloadTooLarge, body: ByteBuffer(string: "<Error><Code>EntityTooLarge</Code></Error>"), close: true)
            }
            if path == "/early" { respond(context, status: .ok, body: ByteBuffer(string: "early")) }
        case .body(var chunk):
            counted += chunk.readableBytes
            if path == "/echo" { body.writeBuffer(&chunk) }
        case .end:
            switch path {
            case "/echo": respond(context, status: .ok, body: body)
            case "/count": respond(context, status: .ok, body: ByteBuffer(string: "\(counted)"))
            case "/never", "/refuse", "/early": break
            case "/stall":
                let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders([("Content-Length", "100")]))
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: 0, count: 10)))), promise: nil)
            case let bytes where bytes.hasPrefix("/bytes/"):
                let size = Int(bytes.dropFirst(7))!
                var headers = HTTPHeaders([("Content-Length", "\(size)")])
                headers.add(name: "Connection", value: "keep-alive")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                if method == .HEAD {
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                } else {
                    writeBytes(context, from: 0, size: size)
                }
            default: respond(context, status: .notFound, body: ByteBuffer())
            }
        }
    }

    /// Writes 256 KiB at a time, the next only when the previous is flushed: a slow reader holds the server back.
    private func writeBytes(_ context: ChannelHandlerContext, from start: Int, size: Int) {
        guard start < size else { return context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil) }
        let count = min(256 * 1024, size - start)
        var chunk = context.channel.allocator.buffer(capacity: count)
        for index in start..<(start + count) { chunk.writeInteger(UInt8(truncatingIfNeeded: index &* 13)) }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk)))).whenSuccess {
            let (server, context) = loopBound.value
            server.writeBytes(context, from: start + count, size: size)
        }
    }

    private func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, body: ByteBuffer, close: Bool = false) {
        let headers = HTTPHeaders([("Content-Length", "\(body.readableBytes)"), ("Connection", close ? "close" : "keep-alive")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in if close { loopBound.value.close(promise: nil) } }
    }
}

/// Runs a task's jobs on one event loop.
final class OnLoop: TaskExecutor {
    let loop: any EventLoop
    init(_ loop: any EventLoop) { self.loop = loop }
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}

/// Counts the connections a scripted server accepted.
final class ConnectionCounter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var connections: Int { count.withLock { $0 } }
}

func withScriptedServer(tls: TestCertificate? = nil, _ body: (String, ConnectionCounter) async throws -> Void) async throws {
    let counter = ConnectionCounter()
    let sslContext = try tls.map {
        try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: [.certificate($0.certificate)], privateKey: .privateKey($0.key)))
    }
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            counter.increment()
            return channel.eventLoop.makeCompletedFuture {
                if let sslContext { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext)) }
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(ScriptedServer())
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    defer { channel.close(promise: nil) }
    try await body("http://127.0.0.1:\(channel.localAddress!.port!)", counter)
}
