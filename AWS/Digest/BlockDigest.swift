/// What SHA-256 and MD5 share: input absorbed in 64-byte blocks, and a last block padded with
/// `0x80`, zeros and the message's length in bits (big-endian for SHA-256, little-endian for MD5).
protocol BlockDigest {
    /// Input waiting for the rest of its block.
    var pending: BlockBuffer { get set }
    /// Bytes absorbed so far.
    var length: UInt64 { get set }
    static var lengthIsBigEndian: Bool { get }
    /// Mixes one 64-byte block into the state.
    mutating func compress(_ block: UnsafeRawBufferPointer)
}

extension BlockDigest {
    mutating func absorb(_ bytes: some Collection<UInt8>) {
        if bytes.withContiguousStorageIfAvailable({ absorb(UnsafeRawBufferPointer($0)) }) == nil {
            Array(bytes).withUnsafeBytes { absorb($0) }
        }
    }

    mutating func absorb(_ bytes: UnsafeRawBufferPointer) {
        length &+= UInt64(bytes.count)
        var input = bytes[...]
        if pending.count > 0 {
            input = pending.fill(from: input)
            guard pending.isFull else { return }
            pending.withBlock { compress($0) }
            pending.count = 0
        }
        while input.count >= 64 {
            compress(UnsafeRawBufferPointer(rebasing: input.prefix(64)))
            input = input.dropFirst(64)
        }
        if !input.isEmpty { _ = pending.fill(from: input) }
    }

    /// Absorbs the padding; the state then holds the digest.
    mutating func pad() {
        let bitLength = length &* 8
        var padding: [UInt8] = [0x80]
        let afterMarker = (Int(length % 64) + 1) % 64
        padding += [UInt8](repeating: 0, count: (56 - afterMarker + 64) % 64)
        for index in 0..<8 {
            let shift = Self.lengthIsBigEndian ? 56 - 8 * index : 8 * index
            padding.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        padding.withUnsafeBytes { absorb($0) }
    }
}

/// Up to one 64-byte block of input waiting for the rest of its block.
struct BlockBuffer: Sendable {
    private var bytes = [UInt8](repeating: 0, count: 64)
    var count = 0

    var isFull: Bool { count == 64 }

    /// Copies as much of `input` as fits; returns what is left of it.
    mutating func fill(from input: Slice<UnsafeRawBufferPointer>) -> Slice<UnsafeRawBufferPointer> {
        let taken = min(64 - count, input.count)
        for (offset, byte) in input.prefix(taken).enumerated() { bytes[count + offset] = byte }
        count += taken
        return input.dropFirst(taken)
    }

    func withBlock<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result { bytes.withUnsafeBytes(body) }
}
