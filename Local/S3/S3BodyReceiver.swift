@preconcurrency import Crypto
import Foundation
import MartletAWS
import NIOCore
import NIOHTTP1
import NIOPosix
import _NIOFileSystem

/// An upload's bytes, written to a temporary file, with the digests S3 checks and keeps.
struct ReceivedBody: Sendable {
    var path: String
    /// A small body kept in memory instead of written to `path` (see `receive(_:into:maxSize:keepingSmallInMemory:)`).
    var inline: ByteBuffer?
    var size: Int64
    var md5: [UInt8]
    /// The flexible checksum sent with the upload (header or trailer), verified.
    var checksum: (algorithm: S3ChecksumAlgorithm, value: String)?

    var etag: String { Hex.encode(md5) }
}

/// How an upload's body is framed and what must be checked once it is all in.
struct S3UploadChecks: Sendable {
    /// Body bytes handed to the thread pool (written and hashed) at a time.
    static let handOverSize = 1 << 20
    /// Batches written or hashed at once, at most (memory held: about this many MiB, plus one).
    static let batchesInFlight = 3

    /// `Content-Length` of the (decoded) payload, when known in advance.
    var declaredLength: Int64?
    /// `Content-MD5`, decoded.
    var contentMD5: [UInt8]?
    /// `x-amz-content-sha256` when it is a hex hash of the payload.
    var contentSHA256: String?
    /// A checksum sent as a header (`x-amz-checksum-crc32: …`).
    var headerChecksum: (algorithm: S3ChecksumAlgorithm, value: String)?
    /// A checksum promised as a trailer (`x-amz-trailer: x-amz-checksum-crc32`).
    var trailerChecksum: S3ChecksumAlgorithm?
    /// `aws-chunked` framing, with its signing chain when the chunks are signed.
    var chunked: (mode: AWSChunkedDecoder.Mode, signing: AWSChunkedDecoder.ChunkSigning?)?

    /// Reads what the request's headers promise about its body; contradictions are S3's errors.
    init(headers: HTTPHeaders, signature: VerifiedSignature?) throws(S3Error) {
        let sha = headers.first(name: "x-amz-content-sha256")
        if let sha, sha.hasPrefix("STREAMING-") {
            guard let mode = AWSChunkedDecoder.Mode(contentSHA256: sha) else {
                throw S3Error.invalidArgument("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.", name: "x-amz-content-sha256", value: sha)
            }
            var signing: AWSChunkedDecoder.ChunkSigning?
            if mode.isSigned {
                guard let signature else { throw S3Error.accessDenied }
                signing = AWSChunkedDecoder.ChunkSigning(signingKey: SymmetricKey(data: signature.signingKey), amzDate: signature.amzDate, scope: signature.scope, seedSignature: signature.signature)
            }
            chunked = (mode, signing)
            guard let decoded = headers.first(name: "x-amz-decoded-content-length").flatMap(Int64.init) else {
                throw S3Error.missingContentLength
            }
            declaredLength = decoded
        } else {
            if let sha, sha != "UNSIGNED-PAYLOAD" {
                guard sha.utf8.count == 64, sha.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
                    throw S3Error.invalidArgument("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.", name: "x-amz-content-sha256", value: sha)
                }
                contentSHA256 = sha
            }
            declaredLength = headers.first(name: "Content-Length").flatMap(Int64.init)
        }
        if let md5 = headers.first(name: "Content-MD5") {
            guard let bytes = Base64.decode(md5), bytes.count == 16 else { throw S3Error.invalidDigest }
            contentMD5 = bytes
        }
        for algorithm in S3ChecksumAlgorithm.allCases {
            if let value = headers.first(name: algorithm.headerName) {
                guard headerChecksum == nil else { throw S3Error.invalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.") }
                headerChecksum = (algorithm, value)
            }
        }
        if let trailer = headers.first(name: "x-amz-trailer") {
            guard chunked != nil else { throw S3Error.invalidRequest("The value specified in the x-amz-trailer header is not supported") }
            guard let algorithm = S3ChecksumAlgorithm(headerName: trailer.trimmingCharacters(in: .whitespaces)) else {
                throw S3Error.invalidRequest("The value specified in the x-amz-trailer header is not supported")
            }
            trailerChecksum = algorithm
        }
    }

    /// Reads `body` into a new file at `path`, computing every digest in one pass; on any failure
    /// the file is removed and nothing else changed. With `keepingSmallInMemory`, a body of at most
    /// `S3SmallFiles.limit` bytes is returned in `inline` and no file is written.
    func receive(
        _ body: HTTPRequestBodyStream, into path: String, maxSize: Int64, keepingSmallInMemory: Bool = false
    ) async throws(S3Error) -> ReceivedBody {
        if let declaredLength, declaredLength > maxSize { throw S3Error.entityTooLarge(proposed: declaredLength, max: maxSize) }
        do {
            let result = try await write(body, to: path, maxSize: maxSize, keepingSmallInMemory: keepingSmallInMemory)
            return result
        } catch {
            unlink(path)
            if let error = error as? S3Error { throw error }
            if let error = error as? AWSChunkedError { throw S3Error(HTTPResponseStatus(statusCode: error.httpStatus), error.code, error.message) }
            if let error = error as? HTTPServerError, case .connectionClosed = error { throw S3Error.incompleteBody }
            throw S3Error.internalError("\(error)")
        }
    }

    private func write(_ body: HTTPRequestBodyStream, to path: String, maxSize: Int64, keepingSmallInMemory: Bool) async throws -> ReceivedBody {
        var digests = BodyDigests(
            sha256: contentSHA256 == nil ? nil : SHA256(), checksum: (headerChecksum?.algorithm ?? trailerChecksum).map(S3ChecksumHasher.init)
        )
        var decoder = chunked.map { AWSChunkedDecoder(mode: $0.mode, signing: $0.signing) }
        var size: Int64 = 0
        var trailers: [String: String] = [:]
        var inline: ByteBuffer?
        if decoder == nil, let declaredLength, declaredLength <= S3SmallFiles.limit {
            // Small bodies: gathered in memory and written with one system call, without the file
            // system thread pool's hops (most uploads of an application are small).
            var whole = ByteBuffer()
            whole.reserveCapacity(Int(declaredLength))
            while var chunk = try await body.next() {
                size += Int64(chunk.readableBytes)
                if size > declaredLength { throw S3Error.incompleteBody }
                whole.writeBuffer(&chunk)
            }
            whole.withUnsafeReadableBytes { digests.update($0) }
            if keepingSmallInMemory { inline = whole } else { try S3SmallFiles.write(whole, to: path) }
        } else {
        // Large bodies: each batch of about a MiB is written and hashed on the thread pool while
        // the socket brings the next ones, so that receiving, writing and MD5 (the slowest, about
        // 800 MB/s on one core) run side by side. Writes and hashes each form a chain (a batch's
        // task waits for the one before), and at most `batchesInFlight` batches are held.
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw S3Error.internalError("open \(path): \(errno)") }
        defer { close(file) }
        var batch: [ByteBuffer] = []
        var batchBytes = 0
        var hashes: [Task<BodyDigests, any Error>] = []
        var writes: [Task<Void, any Error>] = []
        let initial = digests
        func handOver() async throws {
            guard !batch.isEmpty else { return }
            let pieces = batch
            (batch, batchBytes) = ([], 0)
            let previousHash = hashes.last
            hashes.append(Task {
                let before = try await previousHash?.value ?? initial
                return try await NIOThreadPool.singleton.runIfActive {
                    var digests = before
                    for piece in pieces { piece.withUnsafeReadableBytes { digests.update($0) } }
                    return digests
                }
            })
            let previousWrite = writes.last
            writes.append(Task {
                try await previousWrite?.value
                try await NIOThreadPool.singleton.runIfActive { try S3SmallFiles.write(pieces, to: file) }
            })
            // Back-pressure: the oldest write and hash done before more of the body is read.
            if writes.count > Self.batchesInFlight { try await writes.removeFirst().value }
            if hashes.count > Self.batchesInFlight { _ = try await hashes.removeFirst().value }
        }
        do {
            func take(_ piece: ByteBuffer) async throws {
                size += Int64(piece.readableBytes)
                if size > maxSize { throw S3Error.entityTooLarge(proposed: max(size, declaredLength ?? 0), max: maxSize) }
                batch.append(piece)
                batchBytes += piece.readableBytes
                if batchBytes >= Self.handOverSize { try await handOver() }
            }
            while var chunk = try await body.next() {
                if decoder != nil {
                    for piece in try decoder!.feed(&chunk) { try await take(piece) }
                } else {
                    try await take(chunk)
                }
            }
            if decoder != nil { trailers = try decoder!.finish().headers }
            try await handOver()
            for write in writes { try await write.value }
            digests = try await hashes.last?.value ?? digests
        } catch {
            // The file descriptor closes only once no task writes to it any more.
            for write in writes { _ = try? await write.value }
            for hash in hashes { _ = try? await hash.value }
            throw error
        }
        }
        let md5 = digests.md5
        let sha256 = digests.sha256
        let checksum = digests.checksum
        if let declaredLength, size != declaredLength { throw S3Error.incompleteBody }
        let digest = Array(md5.finalize())
        if let contentMD5, contentMD5 != digest { throw S3Error.badDigest }
        if let contentSHA256, let sha256 {
            let computed = Hex.encode(sha256.finalize())
            if computed != contentSHA256 { throw S3Error.contentSHA256Mismatch(provided: contentSHA256, computed: computed) }
        }
        var verified: (algorithm: S3ChecksumAlgorithm, value: String)?
        if let checksum {
            let algorithm = headerChecksum?.algorithm ?? trailerChecksum!
            let computed = checksum.finalizeBase64()
            let sent = headerChecksum?.value ?? trailers[algorithm.headerName]
            guard let sent else { throw S3Error.invalidRequest("The x-amz-trailer header named \(algorithm.headerName) but the body carried no such trailer.") }
            guard sent == computed else { throw S3Error.badChecksum("\(algorithm.headerName)") }
            verified = (algorithm, computed)
        }
        return ReceivedBody(path: path, inline: inline, size: size, md5: digest, checksum: verified)
    }
}

/// The digests of an upload's body: MD5 for the ETag, and the SHA-256 and flexible checksum the
/// request promised, updated together in the body's order.
struct BodyDigests: @unchecked Sendable {  // Crypto's hash states are plain values; one task updates them at a time.
    var md5 = Insecure.MD5()
    var sha256: SHA256?
    var checksum: S3ChecksumHasher?

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        md5.update(bufferPointer: bytes)
        sha256?.update(bufferPointer: bytes)
        checksum?.update(bytes)
    }
}

/// Small files read and written with plain system calls: cheaper than hopping to the file system's
/// thread pool, and brief enough (page cache, at most `limit` bytes) for an event loop thread.
enum S3SmallFiles {
    static let limit: Int64 = 256 * 1024

    static func write(_ buffer: ByteBuffer, to path: String) throws(S3Error) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw S3Error.internalError("open \(path): \(errno)") }
        defer { close(fd) }
        try write([buffer], to: fd)
    }

    /// Appends `pieces` to an open file, in order.
    static func write(_ pieces: [ByteBuffer], to file: Int32) throws(S3Error) {
        for piece in pieces {
            var failure: Int32?
            piece.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(file, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        failure = errno
                        return
                    }
                    offset += written
                }
            }
            if let failure { throw S3Error.internalError("write: \(failure)") }
        }
    }

    static func read(_ path: String, offset: Int64, length: Int64) -> ByteBuffer? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = ByteBuffer()
        let count = Int(length)
        let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
            var done = 0
            while done < count {
                let n = pread(fd, pointer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0, errno == EINTR { continue }
                if n <= 0 { break }
                done += n
            }
            return done
        }
        return read == count ? buffer : nil
    }
}
