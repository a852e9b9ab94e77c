import Foundation
import Logging
import MartletLocal
import MartletRuntime
import MartletTestSupport
import NIOCore
import Synchronization
import Testing

/// Response streaming end to end: the real `bootstrap` running the `stream` handler posts a
/// streamed response; the local Runtime API hands each chunk on as it arrives.
@Suite("Response streaming with the real bootstrap")
struct StreamingTests {
    private let logger = Logger(label: "test")

    private func configuration(timeout: Duration = .seconds(5)) -> FunctionConfiguration {
        FunctionConfiguration(name: "stream", handler: "stream", command: [builtProduct("bootstrap")], timeout: timeout)
    }

    /// Records each chunk with the time it arrived.
    final class Arrivals: Sendable {
        private let state = Mutex<[(ContinuousClock.Instant, String)]>([])
        func record(_ chunk: ByteBuffer) { state.withLock { $0.append((.now, String(buffer: chunk))) } }
        var all: [(ContinuousClock.Instant, String)] { state.withLock { $0 } }
    }

    @Test("Chunks arrive in order, each as it is written, long before the handler ends")
    func chunksArriveAsWritten() async throws {
        let arrivals = Arrivals()
        let (report, ended) = try await FunctionInstance.with(configuration(), output: .lines { _ in }, logger: logger) { instance in
            let report = await instance.invoke(.json(#"{"chunks":4,"intervalMilliseconds":250}"#)) { arrivals.record($0) }
            return (report, ContinuousClock.now)
        }
        #expect(report.outcome.isSuccess)
        let chunks = arrivals.all
        #expect(chunks.map(\.1).joined() == "chunk 1 of 4\nchunk 2 of 4\nchunk 3 of 4\nchunk 4 of 4\n")
        #expect(chunks.count == 4)
        // The first chunk came ~750 ms before the end; each later one ~250 ms after the previous.
        #expect(ended - chunks[0].0 > .milliseconds(500))
        for index in 1..<chunks.count { #expect(chunks[index].0 - chunks[index - 1].0 > .milliseconds(150)) }
        #expect(report.duration > .milliseconds(700))
    }

    @Test("An error after the first chunk reaches the caller as a function error with the handler's error")
    func errorMidStream() async throws {
        let arrivals = Arrivals()
        let report = try await FunctionInstance.with(configuration(), output: .lines { _ in }, logger: logger) { instance in
            await instance.invoke(.json(#"{"chunks":5,"intervalMilliseconds":10,"failAfter":2}"#)) { arrivals.record($0) }
        }
        #expect(arrivals.all.map(\.1) == ["chunk 1 of 5\n", "chunk 2 of 5\n"])
        guard case .functionError(let body, let errorType) = report.outcome else {
            Issue.record("not a function error: \(report.outcome)")
            return
        }
        #expect(errorType?.hasSuffix("StreamFailure") == true)
        #expect(String(buffer: body).contains(#""errorMessage":"failed after 2 chunks, as asked""#))
    }

    @Test("A stream that outlives the timeout is cut off as Task timed out, and the next invocation runs on a fresh process")
    func timeoutMidStream() async throws {
        let (timedOut, next) = try await FunctionInstance.with(configuration(timeout: .seconds(1)), output: .lines { _ in }, logger: logger) { instance in
            let timedOut = await instance.invoke(.json(#"{"chunks":3,"intervalMilliseconds":2000}"#)) { _ in }
            return (timedOut, instance.isAlive)
        }
        #expect(timedOut.outcome.errorType == "Sandbox.Timedout")
        #expect(!next)
    }

    @Test("Without a consumer the stream is collected into one response; the HTTP prelude stays in the body for the gateway")
    func collected() async throws {
        let report = try await FunctionInstance.with(configuration(), output: .lines { _ in }, logger: logger) { instance in
            await instance.invoke(.json(#"{"chunks":2,"intervalMilliseconds":0,"requestContext":{"http":{"method":"GET"}}}"#))
        }
        guard case .success(let body, let contentType) = report.outcome else {
            Issue.record("failed: \(report.outcome)")
            return
        }
        #expect(contentType == ResponseStream.httpIntegrationContentType)
        let bytes = Array(body.readableBytesView)
        let separator = try #require(bytes.firstRange(of: [UInt8](repeating: 0, count: 8)))
        let prelude = try JSONSerialization.jsonObject(with: Data(bytes[..<separator.lowerBound])) as? [String: Any]
        #expect(prelude?["statusCode"] as? Int == 200)
        #expect(String(decoding: bytes[separator.upperBound...], as: UTF8.self) == "chunk 1 of 2\nchunk 2 of 2\n")
    }

    @Test("InvokeWithResponseStream frames PayloadChunk and InvokeComplete events with valid CRCs")
    func eventStream() async throws {
        let configuration = configuration()
        let invoker = SingleFunctionInvoker(configuration: configuration, logger: logger) { _ in }
        let endpoint = InvokeAPIEndpoint(invoker: invoker, logger: logger)
        let messages = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await invoker.run() }
            defer { group.cancelAll() }
            let response = await endpoint.answer(HTTPServerRequest(
                method: .POST, uri: "/2021-11-15/functions/stream/response-streaming-invocations",
                body: ByteBuffer(string: #"{"chunks":3,"intervalMilliseconds":20}"#)
            ))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "Content-Type") == "application/vnd.amazon.eventstream")
            var all = ByteBuffer()
            for try await var chunk in try #require(response.bodyStream) { all.writeBuffer(&chunk) }
            return try Self.decodeEvents(all)
        }
        #expect(messages.map(\.type) == ["PayloadChunk", "PayloadChunk", "PayloadChunk", "InvokeComplete"])
        #expect(messages.prefix(3).map(\.payload).joined() == "chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n")
        #expect(messages.last?.payload == "{}")
    }

    /// Decodes event-stream messages, checking both CRCs of each.
    static func decodeEvents(_ buffer: ByteBuffer) throws -> [(type: String, payload: String)] {
        var buffer = buffer
        var messages: [(String, String)] = []
        while buffer.readableBytes > 0 {
            let message = buffer  // the whole message, before this loop reads past it
            guard let total = buffer.readInteger(as: UInt32.self).map(Int.init), let headersLength = buffer.readInteger(as: UInt32.self).map(Int.init),
                let preludeCRC = buffer.readInteger(as: UInt32.self), var headers = buffer.readSlice(length: headersLength),
                let payload = buffer.readString(length: total - 16 - headersLength), let messageCRC = buffer.readInteger(as: UInt32.self)
            else { throw DecodeError() }
            #expect(preludeCRC == crc32(Array(message.readableBytesView.prefix(8))))
            #expect(messageCRC == crc32(Array(message.readableBytesView.prefix(total - 4))))
            var type = ""
            while headers.readableBytes > 0 {
                guard let nameLength = headers.readInteger(as: UInt8.self), let name = headers.readString(length: Int(nameLength)),
                    headers.readInteger(as: UInt8.self) == 7, let valueLength = headers.readInteger(as: UInt16.self),
                    let value = headers.readString(length: Int(valueLength))
                else { throw DecodeError() }
                if name == ":event-type" { type = value }
            }
            messages.append((type, payload))
        }
        return messages
    }

    struct DecodeError: Error {}

    /// CRC-32 (zlib), bit by bit: an independent check of the encoder's table-driven one.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
