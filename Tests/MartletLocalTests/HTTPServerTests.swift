import Foundation
import MartletLocal
import MartletTestSupport
import Testing

/// The local HTTP server on a raw socket: what clients that pipeline requests see.
@Suite("Local HTTP server")
struct HTTPServerTests {
    /// Sends `text` on a new connection to `port`, then reads until the server closes the connection
    /// (the last request asks it to).
    static func exchange(port: Int, _ text: String) throws -> String {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(socket >= 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(text.utf8)
        #expect(bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) } == bytes.count)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    @Test("Requests pipelined on one connection are answered in order, each once")
    func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withHTTPServer({ request in
            // The first answers last: a server that handled requests at once would reorder them.
            if request.uri == "/first" { try? await Task.sleep(for: .milliseconds(50)) }
            return .json(.ok, #"{"uri":"\#(request.uri)","body":"\#(String(buffer: request.body))"}"#)
        }) { url in
            let port = try #require(Int(url.split(separator: ":").last ?? ""))
            let requests = [
                "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none",
                "GET /second HTTP/1.1\r\nHost: x\r\n\r\n",
                "POST /third HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthree",
            ]
            let answer = try Self.exchange(port: port, requests.joined())
            let bodies = answer.components(separatedBy: "\r\n\r\n").dropFirst().map { $0.prefix { $0 != "}" } + "}" }
            #expect(bodies == [#"{"uri":"/first","body":"one"}"#, #"{"uri":"/second","body":""}"#, #"{"uri":"/third","body":"three"}"#], "\(answer)")
            #expect(answer.components(separatedBy: "HTTP/1.1 200 OK").count == 4)
        }
    }
}
