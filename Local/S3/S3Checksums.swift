@preconcurrency import Crypto
import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A checksum algorithm of S3's flexible checksums (`x-amz-checksum-*`, `x-amz-sdk-checksum-algorithm`).
enum S3ChecksumAlgorithm: String, CaseIterable, Sendable {
    case crc32 = "CRC32"
    case crc32c = "CRC32C"
    case crc64nvme = "CRC64NVME"
    case sha1 = "SHA1"
    case sha256 = "SHA256"

    /// The header that carries a checksum of this algorithm, e.g. `x-amz-checksum-crc32`.
    var headerName: String {
        "x-amz-checksum-" + self.rawValue.lowercased()
    }

    /// The algorithm named by a checksum header such as `X-Amz-Checksum-CRC32C` (case-insensitive).
    init?(headerName: String) {
        let prefix = "x-amz-checksum-"
        let lowered = headerName.lowercased()
        guard lowered.hasPrefix(prefix) else { return nil }
        self.init(rawValue: String(lowered.dropFirst(prefix.count)).uppercased())
    }

    /// The algorithm named by `x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm` (case-insensitive).
    init?(algorithmName: String) {
        self.init(rawValue: algorithmName.uppercased())
    }

    /// The digest size in bytes.
    var digestByteCount: Int {
        switch self {
        case .crc32, .crc32c: 4
        case .crc64nvme: 8
        case .sha1: 20
        case .sha256: 32
        }
    }
}

/// An incremental hasher for one ``S3ChecksumAlgorithm``, producing the base64 form S3 sends.
///
/// ```swift
/// var hasher = S3ChecksumHasher(.crc32)
/// hasher.update("hello".utf8)
/// hasher.finalizeBase64()  // "NhCmhg=="
/// ```
struct S3ChecksumHasher: Sendable {
    private enum State: Sendable {
        case crc32(UInt32)
        case crc32c(UInt32)
        case crc64nvme(UInt64)
        case sha1(Insecure.SHA1)
        case sha256(SHA256)
    }

    /// The algorithm this hasher computes.
    let algorithm: S3ChecksumAlgorithm
    private var state: State

    /// Creates a hasher with no input yet.
    init(_ algorithm: S3ChecksumAlgorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .crc32: self.state = .crc32(0)
        case .crc32c: self.state = .crc32c(0)
        case .crc64nvme: self.state = .crc64nvme(0)
        case .sha1: self.state = .sha1(Insecure.SHA1())
        case .sha256: self.state = .sha256(SHA256())
        }
    }

    /// Feeds more bytes.
    mutating func update(_ bytes: some Collection<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { self.update(UnsafeRawBufferPointer($0)) }
        if done == nil {
            Array(bytes).withUnsafeBytes { self.update($0) }
        }
    }

    /// Feeds the readable bytes of `buffer` without consuming them.
    mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { self.update($0) }
    }

    /// Feeds raw bytes.
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch self.state {
        case .crc32(let crc):
            self.state = .crc32(S3CRC.update32(crc, bytes, table: S3CRC.crc32Table))
        case .crc32c(let crc):
            self.state = .crc32c(S3CRC.update32(crc, bytes, table: S3CRC.crc32cTable))
        case .crc64nvme(let crc):
            self.state = .crc64nvme(S3CRC.update64(crc, bytes, table: S3CRC.crc64nvmeTable))
        case .sha1(var hasher):
            // Leave a placeholder so `hasher` stays uniquely referenced while it is updated.
            self.state = .crc32(0)
            hasher.update(bufferPointer: bytes)
            self.state = .sha1(hasher)
        case .sha256(var hasher):
            self.state = .crc32(0)
            hasher.update(bufferPointer: bytes)
            self.state = .sha256(hasher)
        }
    }

    /// The big-endian digest bytes of everything fed so far (the hasher can keep being updated).
    func finalizeBytes() -> [UInt8] {
        switch self.state {
        case .crc32(let crc), .crc32c(let crc):
            return withUnsafeBytes(of: crc.bigEndian, Array.init)
        case .crc64nvme(let crc):
            return withUnsafeBytes(of: crc.bigEndian, Array.init)
        case .sha1(let hasher):
            return Array(hasher.finalize())
        case .sha256(let hasher):
            return Array(hasher.finalize())
        }
    }

    /// The base64 of the big-endian digest, as in `x-amz-checksum-*` headers and trailers.
    func finalizeBase64() -> String {
        Data(self.finalizeBytes()).base64EncodedString()
    }

    /// The base64 checksum of `bytes` in one call.
    static func base64Checksum(_ algorithm: S3ChecksumAlgorithm, of bytes: some Collection<UInt8>) -> String {
        var hasher = S3ChecksumHasher(algorithm)
        hasher.update(bytes)
        return hasher.finalizeBase64()
    }
}

/// Table-driven reflected CRCs (slicing-by-8). Tables are built once, lazily, and never mutated.
enum S3CRC {
    /// CRC-32/ISO-HDLC (zlib), reflected polynomial.
    static let crc32Polynomial: UInt32 = 0xEDB8_8320
    /// CRC-32C (Castagnoli), reflected polynomial.
    static let crc32cPolynomial: UInt32 = 0x82F6_3B78
    /// CRC-64/NVME, reflected polynomial.
    static let crc64nvmePolynomial: UInt64 = 0x9A6C_9329_AC4B_C9B5

    /// 8 × 256 entries; slice `k` is at `k * 256`.
    static let crc32Table: [UInt32] = makeTable(crc32Polynomial)
    static let crc32cTable: [UInt32] = makeTable(crc32cPolynomial)
    static let crc64nvmeTable: [UInt64] = makeTable(crc64nvmePolynomial)

    /// The slicing-by-8 tables of a reflected CRC: built once, so one generic function serves every width.
    static func makeTable<Word: FixedWidthInteger & UnsignedInteger>(_ polynomial: Word) -> [Word] {
        var table = [Word](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var crc = Word(i)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1
            }
            table[i] = crc
        }
        for slice in 1..<8 {
            for i in 0..<256 {
                let previous = table[(slice - 1) * 256 + i]
                table[slice * 256 + i] = (previous >> 8) ^ table[Int(previous & 0xFF)]
            }
        }
        return table
    }

    /// Continues a 32-bit CRC whose finalised value so far is `crc` (0 for no input).

    static func update32(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer, table: [UInt32]) -> UInt32 {
        var crc = ~crc
        table.withUnsafeBufferPointer { t in
            var index = 0
            let count = bytes.count
            while count - index >= 8 {
                let low = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt32.self)) ^ crc
                let high = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index + 4, as: UInt32.self))
                crc =
                    t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                    ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
                index &+= 8
            }
            while index < count {
                crc = (crc >> 8) ^ t[Int((crc ^ UInt32(bytes[index])) & 0xFF)]
                index &+= 1
            }
        }
        return ~crc
    }

    /// Continues a 64-bit CRC whose finalised value so far is `crc` (0 for no input).

    static func update64(_ crc: UInt64, _ bytes: UnsafeRawBufferPointer, table: [UInt64]) -> UInt64 {
        var crc = ~crc
        table.withUnsafeBufferPointer { t in
            var index = 0
            let count = bytes.count
            while count - index >= 8 {
                let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)) ^ crc
                crc =
                    t[7 * 256 + Int(word & 0xFF)] ^ t[6 * 256 + Int((word >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((word >> 16) & 0xFF)] ^ t[4 * 256 + Int((word >> 24) & 0xFF)]
                    ^ t[3 * 256 + Int((word >> 32) & 0xFF)] ^ t[2 * 256 + Int((word >> 40) & 0xFF)]
                    ^ t[1 * 256 + Int((word >> 48) & 0xFF)] ^ t[Int(word >> 56)]
                index &+= 8
            }
            while index < count {
                crc = (crc >> 8) ^ t[Int((crc ^ UInt64(bytes[index])) & 0xFF)]
                index &+= 1
            }
        }
        return ~crc
    }
}
