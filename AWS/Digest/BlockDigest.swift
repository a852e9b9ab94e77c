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
    /// Mixes whole 64-byte blocks into the state, in order.
    mutating func compress(blocks: UnsafeRawBufferPointer)
}

extension BlockDigest {
    mutating func compress(blocks: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < blocks.count {
            compress(UnsafeRawBufferPointer(rebasing: blocks[offset..<(offset + 64)]))
            offset += 64
        }
    }

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
        let whole = input.count / 64 * 64
        if whole > 0 {
            compress(blocks: UnsafeRawBufferPointer(rebasing: input.prefix(whole)))
            input = input.dropFirst(whole)
        }
        if !input.isEmpty { _ = pending.fill(from: input) }
    }

    /// Absorbs the padding; the state then holds the digest.
    mutating func pad() {
        let bitLength = length &* 8
        // 0x80, zeros up to 56 bytes into a block, then the 8-byte length: one or two blocks.
        let zeros = (55 - Int(length % 64) + 64) % 64
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 72) { padding in
            padding.initialize(repeating: 0)
            padding[0] = 0x80
            for index in 0..<8 {
                let shift = Self.lengthIsBigEndian ? 56 - 8 * index : 8 * index
                padding[1 + zeros + index] = UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))
            }
            absorb(UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(padding)[0..<(9 + zeros)]))
        }
    }
}

/// Up to one 64-byte block of input waiting for the rest of its block (inline: no allocation).
struct BlockBuffer: Sendable {
    private var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    var count = 0

    var isFull: Bool { count == 64 }

    /// Copies as much of `input` as fits; returns what is left of it.
    mutating func fill(from input: Slice<UnsafeRawBufferPointer>) -> Slice<UnsafeRawBufferPointer> {
        let taken = min(64 - count, input.count)
        let start = count
        withUnsafeMutableBytes(of: &storage) { block in
            block.baseAddress!.advanced(by: start).copyMemory(from: input.base.baseAddress!.advanced(by: input.startIndex), byteCount: taken)
        }
        count += taken
        return input.dropFirst(taken)
    }

    func withBlock<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        withUnsafeBytes(of: storage) { body($0) }
    }
}
