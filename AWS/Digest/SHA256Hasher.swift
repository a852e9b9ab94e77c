import CSHA256

/// SHA-256 (FIPS 180-4), so the Lambda zip carries no second copy of BoringSSL's digests.
///
/// Blocks go through the CPU's SHA instructions where it has them (x86-64 SHA extensions), and
/// through the portable Swift compression function otherwise. Fast enough for signing (a canonical
/// request is a few hundred bytes) and for hashing bodies of a few megabytes; the local emulator
/// hashes bulk uploads with swift-crypto instead.
///
/// ```swift
/// var hasher = SHA256Hasher()
/// hasher.update(Array("abc".utf8))
/// let digest = hasher.finalize()   // 32 bytes
/// ```
public struct SHA256Hasher: Sendable, BlockDigest {
    /// The digest's length in bytes.
    public static let byteCount = 32
    static let blockSize = 64

    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19)
    var pending = BlockBuffer()
    var length: UInt64 = 0
    static let lengthIsBigEndian = true

    /// Whether this hasher's blocks go through the CPU's SHA instructions.
    private let onCPUInstructions: Bool

    /// Which compression function a hasher runs.
    public enum Implementation: Sendable {
        /// The CPU's SHA instructions (x86-64 SHA extensions); the portable one where it lacks them.
        case cpuInstructions
        /// Portable Swift.
        case portable
    }

    /// Whether this machine's CPU has the SHA instructions.
    public static let cpuHasInstructions = martlet_sha256_hardware_available() == 1

    public init(implementation: Implementation = .cpuInstructions) {
        onCPUInstructions = implementation == .cpuInstructions && Self.cpuHasInstructions
    }

    /// The digest of `bytes`.
    public static func hash(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var hasher = SHA256Hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Adds bytes to the message.
    public mutating func update(_ bytes: some Collection<UInt8>) { absorb(bytes) }

    /// Adds bytes to the message, read in place.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { absorb(bytes) }

    /// The digest (32 bytes). The hasher is spent afterwards.
    public consuming func finalize() -> [UInt8] {
        pad()
        return [UInt8](unsafeUninitializedCapacity: Self.byteCount) { digest, count in
            withUnsafeBytes(of: state) { words in
                for index in 0..<8 {
                    let word = words.load(fromByteOffset: index * 4, as: UInt32.self)
                    for byte in 0..<4 { digest[index * 4 + byte] = UInt8(truncatingIfNeeded: word >> UInt32(24 - 8 * byte)) }
                }
            }
            count = Self.byteCount
        }
    }

    private static let k: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    @inline(__always)
    private static func rotateRight(_ value: UInt32, _ count: UInt32) -> UInt32 { (value >> count) | (value << (32 - count)) }

    mutating func compress(_ block: UnsafeRawBufferPointer) { compress(blocks: block) }

    /// Mixes whole 64-byte blocks into the state.
    mutating func compress(blocks: UnsafeRawBufferPointer) {
        if onCPUInstructions {
            withUnsafeMutableBytes(of: &state) { words in
                martlet_sha256_compress_hardware(
                    words.baseAddress!.assumingMemoryBound(to: UInt32.self), blocks.baseAddress!.assumingMemoryBound(to: UInt8.self), blocks.count / 64
                )
            }
            return
        }
        var offset = 0
        while offset < blocks.count {
            compressInSoftware(UnsafeRawBufferPointer(rebasing: blocks[offset..<(offset + 64)]))
            offset += 64
        }
    }

    /// The portable compression function, one block.
    mutating func compressInSoftware(_ block: UnsafeRawBufferPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            for index in 0..<16 {
                w[index] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
            }
            for index in 16..<64 {
                let s0 = Self.rotateRight(w[index - 15], 7) ^ Self.rotateRight(w[index - 15], 18) ^ (w[index - 15] >> 3)
                let s1 = Self.rotateRight(w[index - 2], 17) ^ Self.rotateRight(w[index - 2], 19) ^ (w[index - 2] >> 10)
                w[index] = w[index - 16] &+ s0 &+ w[index - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, h) = state
            Self.k.withUnsafeBufferPointer { k in
                for index in 0..<64 {
                    let s1 = Self.rotateRight(e, 6) ^ Self.rotateRight(e, 11) ^ Self.rotateRight(e, 25)
                    let choice = (e & f) ^ (~e & g)
                    let t1 = h &+ s1 &+ choice &+ k[index] &+ w[index]
                    let s0 = Self.rotateRight(a, 2) ^ Self.rotateRight(a, 13) ^ Self.rotateRight(a, 22)
                    let majority = (a & b) ^ (a & c) ^ (b & c)
                    let t2 = s0 &+ majority
                    h = g
                    g = f
                    f = e
                    e = d &+ t1
                    d = c
                    c = b
                    b = a
                    a = t1 &+ t2
                }
            }
            state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e, state.5 &+ f, state.6 &+ g, state.7 &+ h)
        }
    }
}
