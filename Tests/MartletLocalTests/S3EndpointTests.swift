import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import MartletAWS
import MartletTestSupport
import NIOCore
import NIOHTTP1
import Testing

@testable import MartletLocal

/// S3 on the local endpoint through our own wire layer and plain HTTP: objects, ranges,
/// presigned URLs and POST policies checked as S3 checks them.
@Suite("Local S3")
struct S3EndpointTests {
    static let credentials = Credentials(accessKeyID: "test", secretAccessKey: "test")

    /// An endpoint on an ephemeral port (objects under a fresh folder), and an S3 client for it (path style).
    func withS3<R: Sendable>(data: String? = nil, _ body: (S3Client, LocalEndpoint) async throws -> R) async throws -> R {
        let folder = data ?? FileManager.default.temporaryDirectory.appendingPathComponent("martlet-s3-\(UUID().uuidString)").path
        defer { if data == nil { try? FileManager.default.removeItem(atPath: folder) } }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return try await withLocalEndpoint(database: try SQLiteDatabase(path: folder + "/state.sqlite"), objectsFolder: folder + "/s3") { url, endpoint in
            let aws = AWSClient(
                configuration: AWSConfiguration(region: "us-east-1", endpointURL: url, retry: RetryPolicy(maxAttempts: 1)),
                credentials: StaticCredentialProvider(Self.credentials)
            )
            return try await body(S3Client(aws, addressing: .path), endpoint)
        }
    }

    /// A plain HTTP request (no signing): what a browser or `curl` does with a presigned URL.
    func plain(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return (Int(response.status.code), response.headers, String(buffer: bytes))
    }

    func serviceError(_ body: () async throws -> Void) async -> AWSServiceError? {
        do {
            try await body()
            return nil
        } catch {
            return error as? AWSServiceError
        }
    }

    @Test("Objects round-trip with metadata, ranges, conditional reads and deletes; errors carry S3's codes")
    func objects() async throws {
        try await withS3 { s3, _ in
            try await s3.createBucket("media")
            let body = Array("Welcome to Amazon S3.".utf8)
            let written = try await s3.putObject(bucket: "media", key: "a b+c/ü.txt", body: .bytes(ByteBuffer(bytes: body)), contentType: "text/plain", metadata: ["seed": "42"])
            #expect(written.eTag == "\"\(Hex.encode(Insecure.MD5.hash(data: body)))\"")
            let object = try await s3.getObject(bucket: "media", key: "a b+c/ü.txt")
            var collected: [UInt8] = []
            for try await chunk in object.body { collected += chunk.readableBytesView }
            #expect(collected == body)
            #expect(object.metadata.contentType == "text/plain")
            #expect(object.metadata.userMetadata["seed"] == "42")
            let range = try await s3.getObject(bucket: "media", key: "a b+c/ü.txt", range: "bytes=0-6")
            var ranged: [UInt8] = []
            for try await chunk in range.body { ranged += chunk.readableBytesView }
            #expect(String(decoding: ranged, as: UTF8.self) == "Welcome")
            #expect(range.metadata.contentRange == "bytes 0-6/21")
            let missing = await serviceError { _ = try await s3.headObject(bucket: "media", key: "nope") }
            #expect(missing?.status == 404)
            let noBucket = await serviceError { _ = try await s3.getObject(bucket: "nobucket", key: "x") }
            #expect(noBucket?.code == "NoSuchBucket")
            try await s3.deleteObject(bucket: "media", key: "a b+c/ü.txt")
            let gone = await serviceError { _ = try await s3.getObject(bucket: "media", key: "a b+c/ü.txt") }
            #expect(gone?.code == "NoSuchKey")
        }
    }

    @Test("Small objects live in SQLite in their records' rows: no file, ranges and copies work, replaced bytes go; large objects stay files")
    func smallObjectsAreInline() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-s3-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func blobFiles() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: folder + "/s3/blobs").count) ?? 0 }
        func inlineRows(_ endpoint: LocalEndpoint) throws -> Int64 {
            try endpoint.s3.store.database.read {
                try $0.query("SELECT (SELECT COUNT(*) FROM s3_inline) + (SELECT COUNT(*) FROM s3_objects WHERE body IS NOT NULL)", [])[0][0].integer ?? -1
            }
        }
        let small = (0..<Int(S3SmallFiles.limit)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try await withS3(data: folder) { s3, endpoint in
            try await s3.createBucket("media")
            _ = try await s3.putObject(bucket: "media", key: "small", body: .bytes(ByteBuffer(bytes: small)))
            #expect(blobFiles() == 0)
            #expect(try inlineRows(endpoint) == 1)
            #expect(try await s3.getObject(bucket: "media", key: "small").collect(upTo: 1 << 20) == ByteBuffer(bytes: small))
            let range = try await s3.getObject(bucket: "media", key: "small", range: "bytes=100-199").collect(upTo: 1 << 20)
            #expect(Array(range.readableBytesView) == Array(small[100..<200]))
            // A copy of an inline object is inline too, and independent of its source.
            let copied = try await plainSigned(s3, "PUT", "/media/copy", headers: [("x-amz-copy-source", "/media/small")])
            #expect(copied == 200)
            try await s3.deleteObject(bucket: "media", key: "small")
            #expect(try await s3.getObject(bucket: "media", key: "copy").collect(upTo: 1 << 20) == ByteBuffer(bytes: small))
            // One byte over the limit: a file.
            _ = try await s3.putObject(bucket: "media", key: "large", body: .bytes(ByteBuffer(bytes: small + [1])))
            #expect(blobFiles() == 1)
            #expect(try await s3.getObject(bucket: "media", key: "large").collect(upTo: 1 << 20).readableBytes == small.count + 1)
            // Overwrites and deletes retire the old bytes; the sweep removes them once the grace period passed.
            _ = try await s3.putObject(bucket: "media", key: "copy", body: .bytes(ByteBuffer(string: "new")))
            endpoint.s3.store.sweepRetired(now: .now + S3Store.retirementDelay + .seconds(1))
            #expect(try inlineRows(endpoint) == 1)
            #expect(String(buffer: try await s3.getObject(bucket: "media", key: "copy").collect(upTo: 100)) == "new")
            // Bytes no record names (a crash between retiring and sweeping) are dropped at the next start.
            _ = try endpoint.s3.store.database.write { try $0.run("INSERT INTO s3_inline(blob, body) VALUES('inline-orphan', x'00')", []) }
        }
        try await withS3(data: folder) { s3, endpoint async throws in
            let rows = try inlineRows(endpoint)
            #expect(rows == 1)
            #expect(String(buffer: try await s3.getObject(bucket: "media", key: "copy").collect(upTo: 100)) == "new")
        }
    }

    /// A request signed with the test credentials, sent with plain HTTP; returns its status.
    func plainSigned(_ s3: S3Client, _ method: String, _ path: String, headers: [(String, String)]) async throws -> Int {
        let base = s3.aws.configuration.endpoint(for: .s3)
        let url = RequestURL(scheme: base.scheme, host: base.host, port: base.port, encodedPath: path)
        let signer = SigV4Signer(credentials: Self.credentials, region: "us-east-1", service: "s3")
        let signed = signer.sign(method: method, url: url, headers: headers.map { (name: $0.0, value: $0.1) }, payload: .empty, at: .now)
        return try await plain(HTTPMethod(rawValue: method), url.description, headers: signed.map { ($0.name, $0.value) }).status
    }

    @Test("A 40 MiB file streams up and down unchanged")
    func largeObject() async throws {
        try await withS3 { s3, _ in
            try await s3.createBucket("big")
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-big-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            var generator = SystemRandomNumberGenerator()
            let bytes = (0..<(40 << 20) / 8).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } }
            _ = FileManager.default.createFile(atPath: folder + "/in", contents: Data(bytes))
            let written = try await s3.putObject(bucket: "big", key: "in.bin", body: .file(path: folder + "/in", length: Int64(bytes.count)))
            #expect(written.eTag == "\"\(Hex.encode(Insecure.MD5.hash(data: bytes)))\"")
            _ = try await s3.download(bucket: "big", key: "in.bin", to: folder + "/out")
            #expect(FileManager.default.contentsEqual(atPath: folder + "/in", andPath: folder + "/out"))
        }
    }

    @Test("Presigned URLs work with plain HTTP, and tampered or expired ones are refused as S3 refuses them")
    func presignedURLs() async throws {
        try await withS3 { s3, _ in
            try await s3.createBucket("uploads")
            let presigner = try await s3.presigner()
            let put = try presigner.presignedURL(.put, bucket: "uploads", key: "in/clip.wav", contentType: "audio/wav")
            let stored = try await plain(.PUT, put, headers: [("Content-Type", "audio/wav")], body: Array("RIFF".utf8))
            #expect(stored.status == 200)
            let wrongType = try await plain(.PUT, put, headers: [("Content-Type", "text/plain")], body: Array("RIFF".utf8))
            #expect(wrongType.status == 403)
            #expect(wrongType.body.contains("<Code>SignatureDoesNotMatch</Code>"))
            let get = try presigner.presignedURL(.get, bucket: "uploads", key: "in/clip.wav")
            let fetched = try await plain(.GET, get)
            #expect(fetched.status == 200 && fetched.body == "RIFF")
            #expect(fetched.headers.first(name: "Content-Type") == "audio/wav")
            let tampered = try await plain(.GET, get.replacingOccurrences(of: "in/clip.wav", with: "in/clip2.wav"))
            #expect(tampered.status == 403 && tampered.body.contains("SignatureDoesNotMatch"))
            let old = try presigner.presignedURL(.get, bucket: "uploads", key: "in/clip.wav", expiresIn: 60, at: .now.adding(seconds: -120))
            let expired = try await plain(.GET, old)
            #expect(expired.status == 403)
            #expect(expired.body.contains("<Code>AccessDenied</Code><Message>Request has expired</Message>"))
            let anonymous = try await plain(.GET, get.components(separatedBy: "?")[0])
            #expect(anonymous.status == 403 && anonymous.body.contains("AccessDenied"))
        }
    }

    /// A multipart form as a browser sends it: the fields, then the file.
    func form(_ post: PresignedPost, file: [UInt8], filename: String = "clip.wav", extra: [(String, String)] = []) -> (body: [UInt8], contentType: String) {
        let boundary = "----martlet\(UUID().uuidString)"
        var body: [UInt8] = []
        for field in post.fields.map({ ($0.name, $0.value) }) + extra {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(field.0)\"\r\n\r\n\(field.1)\r\n".utf8)
        }
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\nContent-Type: audio/wav\r\n\r\n".utf8)
        body += file
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        return (body, "multipart/form-data; boundary=\(boundary)")
    }

    @Test("A presigned POST uploads within its policy; a file outside content-length-range or an extra field is refused and nothing is stored")
    func presignedPost() async throws {
        try await withS3 { s3, _ in
            try await s3.createBucket("forms")
            let post = try await s3.presignedPost(bucket: "forms", key: "inputs/${filename}", conditions: [.contentLengthRange(min: 1, max: 1000)])
            let ok = form(post, file: Array(repeating: 7, count: 100))
            let stored = try await plain(.POST, post.url, headers: [("Content-Type", ok.contentType)], body: ok.body)
            #expect(stored.status == 204)
            let head = try await s3.headObject(bucket: "forms", key: "inputs/clip.wav")
            #expect(head.contentLength == 100)

            let big = form(post, file: Array(repeating: 7, count: 1001), filename: "big.wav")
            let tooLarge = try await plain(.POST, post.url, headers: [("Content-Type", big.contentType)], body: big.body)
            #expect(tooLarge.status == 400 && tooLarge.body.contains("EntityTooLarge"))
            let extra = form(post, file: [1], filename: "extra.wav", extra: [("x-amz-meta-owner", "mallory")])
            let refused = try await plain(.POST, post.url, headers: [("Content-Type", extra.contentType)], body: extra.body)
            #expect(refused.status == 403 && refused.body.contains("Extra input fields"))
            for key in ["inputs/big.wav", "inputs/extra.wav"] {
                let missing = await serviceError { _ = try await s3.headObject(bucket: "forms", key: key) }
                #expect(missing?.status == 404)
            }
        }
    }

    @Test("Listings page through keys and common prefixes in byte order with opaque continuation tokens")
    func listing() async throws {
        try await withS3 { s3, endpoint in
            try await s3.createBucket("list")
            let keys = ["a/1", "a/2", "b", "c/x/1", "c/y", "d", "é", "z/"]
            for key in keys { try await s3.putObject(bucket: "list", key: key, body: .bytes(ByteBuffer(string: key))) }
            let service = endpoint.s3
            var cursor = S3Service.ListCursor(after: nil, skipPrefix: nil)
            var seen: [String] = []
            while true {
                let page = try service.listPage(bucket: "list", prefix: "", delimiter: "/", cursor: cursor, maxKeys: 2)
                seen += (page.objects.map(\.key) + page.commonPrefixes).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                guard page.isTruncated, let next = page.nextCursor else { break }
                #expect(S3Service.ListCursor(token: next.token) == next)
                cursor = next
            }
            #expect(seen == ["a/", "b", "c/", "d", "z/", "é"])
        }
    }

    @Test("Range headers: S3's rules for suffixes, open ends, ignored forms and unsatisfiable ranges")
    func ranges() throws {
        #expect(try S3Service.byteRange("bytes=0-9", size: 100) == 0..<10)
        #expect(try S3Service.byteRange("bytes=90-", size: 100) == 90..<100)
        #expect(try S3Service.byteRange("bytes=-5", size: 100) == 95..<100)
        #expect(try S3Service.byteRange("bytes=-500", size: 100) == 0..<100)
        #expect(try S3Service.byteRange("bytes=50-5000", size: 100) == 50..<100)
        #expect(try S3Service.byteRange("bytes=0-1,5-6", size: 100) == nil)
        #expect(try S3Service.byteRange("items=0-1", size: 100) == nil)
        #expect(throws: S3Error.self) { try S3Service.byteRange("bytes=100-", size: 100) }
        #expect(throws: S3Error.self) { try S3Service.byteRange("bytes=0-", size: 0) }
    }

    @Test("Virtual-hosted-style hosts name the bucket; path style otherwise")
    func addressing() {
        #expect(S3Target.virtualHostedBucket("media.localhost:4566") == "media")
        #expect(S3Target.virtualHostedBucket("media.s3.localhost") == "media")
        #expect(S3Target.virtualHostedBucket("my.bucket.s3.us-west-2.amazonaws.com") == "my.bucket")
        #expect(S3Target.virtualHostedBucket("127.0.0.1:4566") == nil)
        #expect(S3Target.virtualHostedBucket("localhost:4566") == nil)
    }
}
