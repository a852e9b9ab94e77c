import NIOCore
import Testing

@testable import MartletLocal

@Suite("S3 checksums")
struct S3ChecksumsTests {
    /// Bit-at-a-time reflected CRC, the reference the table-driven code must match.
    static func referenceCRC(_ bytes: [UInt8], polynomial: UInt64, width: Int) -> UInt64 {
        let mask: UInt64 = width == 64 ? ~0 : (1 << UInt64(width)) - 1
        var crc = mask
        for byte in bytes {
            crc ^= UInt64(byte)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1
            }
        }
        return ~crc & mask
    }

    static func reference(_ algorithm: S3ChecksumAlgorithm, _ bytes: [UInt8]) -> UInt64 {
        switch algorithm {
        case .crc32: referenceCRC(bytes, polynomial: 0xEDB8_8320, width: 32)
        case .crc32c: referenceCRC(bytes, polynomial: 0x82F6_3B78, width: 32)
        case .crc64nvme: referenceCRC(bytes, polynomial: 0x9A6C_9329_AC4B_C9B5, width: 64)
        case .sha1, .sha256: fatalError("not a CRC")
        }
    }

    static func value(_ hasher: S3ChecksumHasher) -> UInt64 {
        hasher.finalizeBytes().reduce(0) { $0 << 8 | UInt64($1) }
    }

    static let crcs: [S3ChecksumAlgorithm] = [.crc32, .crc32c, .crc64nvme]

    @Test("check values of \"123456789\"")
    func checkValues() {
        let input = Array("123456789".utf8)
        let expected: [S3ChecksumAlgorithm: UInt64] = [
            .crc32: 0xCBF4_3926, .crc32c: 0xE306_9283, .crc64nvme: 0xAE8B_1486_0A79_9888,
        ]
        for (algorithm, value) in expected {
            var hasher = S3ChecksumHasher(algorithm)
            hasher.update(input)
            #expect(Self.value(hasher) == value, "\(algorithm)")
            #expect(hasher.finalizeBytes().count == algorithm.digestByteCount)
            #expect(Self.reference(algorithm, input) == value, "reference \(algorithm)")
        }
    }

    @Test("base64 digests as S3 sends them")
    func base64Digests() {
        let hello = Array("hello".utf8)
        #expect(S3ChecksumHasher.base64Checksum(.crc32, of: hello) == "NhCmhg==")
        #expect(S3ChecksumHasher.base64Checksum(.sha1, of: hello) == "qvTGHdzF6KLavt4PO0gs2a6pQ00=")
        #expect(
            S3ChecksumHasher.base64Checksum(.sha256, of: hello) == "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        )
        #expect(S3ChecksumHasher.base64Checksum(.crc32, of: []) == "AAAAAA==")
        #expect(S3ChecksumHasher.base64Checksum(.crc64nvme, of: []) == "AAAAAAAAAAA=")
        #expect(
            S3ChecksumHasher.base64Checksum(.sha256, of: []) == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        )
        // "123456789": CRC32C 0xE3069283, CRC64NVME 0xAE8B14860A799888 as big-endian bytes.
        let digits = Array("123456789".utf8)
        #expect(S3ChecksumHasher.base64Checksum(.crc32c, of: digits) == "4waSgw==")
        #expect(S3ChecksumHasher.base64Checksum(.crc64nvme, of: digits) == "rosUhgp5mIg=")
    }

    @Test("CRC32 agrees with Python's zlib.crc32")
    func zlibCrossCheck() {
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 31 + 7) }
        var hasher = S3ChecksumHasher(.crc32)
        hasher.update(data)
        // python3 -c "import zlib; print(hex(zlib.crc32(bytes(((i*31+7)&0xff) for i in range(1000)))))"
        #expect(Self.value(hasher) == 0x8902_161E)
    }

    @Test("table-driven CRCs match the bitwise reference on random data of every small length")
    func matchesReference() {
        for length in Array(0...70) + [255, 256, 1000, 4099] {
            let data = S3SplitFeeding.randomBytes(length, seed: UInt64(length))
            for algorithm in Self.crcs {
                var hasher = S3ChecksumHasher(algorithm)
                hasher.update(data)
                #expect(Self.value(hasher) == Self.reference(algorithm, data), "\(algorithm) length \(length)")
            }
        }
    }

    @Test("incremental updates at random splits equal one update", arguments: S3ChecksumAlgorithm.allCases)
    func incremental(algorithm: S3ChecksumAlgorithm) {
        let data = S3SplitFeeding.randomBytes(777, seed: 3)
        let whole = S3ChecksumHasher.base64Checksum(algorithm, of: data)
        for pieces in S3SplitFeeding.randomSplits(of: data, runs: 30, maxPiece: 40) {
            var hasher = S3ChecksumHasher(algorithm)
            for piece in pieces { hasher.update(piece) }
            #expect(hasher.finalizeBase64() == whole)
        }
        for cut in stride(from: 0, through: data.count, by: 1) {
            var hasher = S3ChecksumHasher(algorithm)
            hasher.update(data[..<cut])
            hasher.update(data[cut...])
            #expect(hasher.finalizeBase64() == whole)
        }
    }

    @Test("ByteBuffer and non-contiguous input hash the same", arguments: S3ChecksumAlgorithm.allCases)
    func inputKinds(algorithm: S3ChecksumAlgorithm) {
        let data = S3SplitFeeding.randomBytes(300, seed: 9)
        let whole = S3ChecksumHasher.base64Checksum(algorithm, of: data)
        var fromBuffer = S3ChecksumHasher(algorithm)
        var buffer = ByteBuffer(bytes: data)
        buffer.moveReaderIndex(forwardBy: 100)
        fromBuffer.update(ByteBuffer(bytes: data[..<100]))
        fromBuffer.update(buffer)
        #expect(buffer.readableBytes == 200, "update must not consume the buffer")
        #expect(fromBuffer.finalizeBase64() == whole)
        var fromLazy = S3ChecksumHasher(algorithm)
        fromLazy.update(data.lazy.map { $0 })
        #expect(fromLazy.finalizeBase64() == whole)
    }

    @Test("finalizing does not end the hasher")
    func finalizeIsNonDestructive() {
        for algorithm in S3ChecksumAlgorithm.allCases {
            var hasher = S3ChecksumHasher(algorithm)
            hasher.update(Array("hel".utf8))
            _ = hasher.finalizeBase64()
            hasher.update(Array("lo".utf8))
            #expect(hasher.finalizeBase64() == S3ChecksumHasher.base64Checksum(algorithm, of: Array("hello".utf8)))
        }
    }

    @Test("header names round-trip case-insensitively")
    func headerNames() {
        #expect(S3ChecksumAlgorithm.crc32.headerName == "x-amz-checksum-crc32")
        #expect(S3ChecksumAlgorithm.crc64nvme.headerName == "x-amz-checksum-crc64nvme")
        for algorithm in S3ChecksumAlgorithm.allCases {
            #expect(S3ChecksumAlgorithm(headerName: algorithm.headerName) == algorithm)
            #expect(S3ChecksumAlgorithm(headerName: algorithm.headerName.uppercased()) == algorithm)
            #expect(S3ChecksumAlgorithm(algorithmName: algorithm.rawValue.lowercased()) == algorithm)
        }
        #expect(S3ChecksumAlgorithm(headerName: "X-Amz-Checksum-Crc32C") == .crc32c)
        #expect(S3ChecksumAlgorithm(headerName: "x-amz-checksum-md5") == nil)
        #expect(S3ChecksumAlgorithm(headerName: "x-amz-checksum-") == nil)
        #expect(S3ChecksumAlgorithm(headerName: "x-amz-checksum-type") == nil)
        #expect(S3ChecksumAlgorithm(headerName: "crc32") == nil)
    }
}
