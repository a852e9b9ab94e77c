import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// A file's first `length` bytes as chunks, read on NIO's blocking-I/O thread pool.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let path: String
    let length: Int64
    let chunkSize: Int

    func makeAsyncIterator() -> Iterator { Iterator(path: path, length: length, chunkSize: chunkSize) }

    final class Iterator: AsyncIteratorProtocol {
        private let path: String
        private let length: Int64
        private let chunkSize: Int
        private var descriptor: Int32 = -1
        private var offset: Int64 = 0

        init(path: String, length: Int64, chunkSize: Int) {
            self.path = path
            self.length = length
            self.chunkSize = chunkSize
        }

        /// Files up to this size are read without leaving the calling thread.
        static let readInPlaceLimit: Int64 = 64 * 1024

        deinit { if descriptor >= 0 { close(descriptor) } }

        func next() async throws -> ByteBuffer? {
            guard offset < length else { return nil }
            if descriptor < 0 {
                descriptor = open(path, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { throw FileIOError("cannot open \(path)", errno: errno) }
            }
            let (descriptor, offset, count) = (descriptor, offset, Int(Swift.min(Int64(chunkSize), length - offset)))
            let read: @Sendable () throws -> ByteBuffer = {
                var buffer = ByteBuffer()
                let read = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
                    let result = pread(descriptor, pointer.baseAddress, count, off_t(offset))
                    guard result >= 0 else { throw FileIOError("cannot read the file", errno: errno) }
                    return result
                }
                guard read > 0 else { throw FileIOError("the file is shorter than \(offset + Int64(count)) bytes", errno: 0) }
                return buffer
            }
            // A whole small file (a result just written, in the page cache) is read where we are: the
            // trip to the thread pool and back would cost more than the read.
            let chunk = offset == 0 && length <= Self.readInPlaceLimit ? try read() : try await NIOThreadPool.singleton.runIfActive(read)
            self.offset += Int64(chunk.readableBytes)
            return chunk
        }
    }
}

/// Writes a file from start to end on NIO's blocking-I/O thread pool.
final class FileWriter {
    private let descriptor: Int32
    private let path: String

    /// Creates (or truncates) the file at `path`.
    init(creating path: String) throws {
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        self.path = path
        guard descriptor >= 0 else { throw FileIOError("cannot create \(path)", errno: errno) }
    }

    deinit { close(descriptor) }

    func write(_ chunk: ByteBuffer) async throws {
        let descriptor = descriptor
        try await NIOThreadPool.singleton.runIfActive {
            try chunk.withUnsafeReadableBytes { bytes in
                var written = 0
                while written < bytes.count {
                    let result = systemWrite(descriptor, bytes.baseAddress! + written, bytes.count - written)
                    if result < 0 && errno == EINTR { continue }
                    guard result > 0 else { throw FileIOError("cannot write the file", errno: errno) }
                    written += result
                }
            }
        }
    }

    /// Flushes the file to disk.
    func sync() async throws {
        let descriptor = descriptor
        try await NIOThreadPool.singleton.runIfActive {
            guard fsync(descriptor) == 0 else { throw FileIOError("cannot flush the file", errno: errno) }
        }
    }
}

/// A failed file operation, with the system's reason.
public struct FileIOError: Error, CustomStringConvertible {
    public let description: String

    init(_ what: String, errno code: Int32) {
        description = code == 0 ? what : "\(what): \(String(cString: strerror(code)))"
    }
}
