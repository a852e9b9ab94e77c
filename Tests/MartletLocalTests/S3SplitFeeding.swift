import NIOCore

/// Ways of cutting one body into pieces, so incremental parsers can be fed at every byte boundary.
enum S3SplitFeeding {
    /// A small deterministic generator (SplitMix64), so failures reproduce.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { self.state = seed }
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// The body in one piece, cut in two at every index, one byte at a time, and in random pieces.
    static func allSplits(of bytes: [UInt8], randomRuns: Int = 20, seed: UInt64 = 42) -> [[[UInt8]]] {
        var result: [[[UInt8]]] = [[bytes]]
        for cut in 0...bytes.count {
            result.append([Array(bytes[..<cut]), Array(bytes[cut...])])
        }
        result.append(bytes.map { [$0] })
        result.append(contentsOf: self.randomSplits(of: bytes, runs: randomRuns, seed: seed))
        return result
    }

    /// Random cuts, pieces of 1 to 64 bytes (sometimes empty).
    static func randomSplits(of bytes: [UInt8], runs: Int, seed: UInt64 = 7, maxPiece: Int = 64) -> [[[UInt8]]] {
        var generator = Generator(seed: seed)
        var result: [[[UInt8]]] = []
        for _ in 0..<runs {
            var pieces: [[UInt8]] = []
            var index = 0
            while index < bytes.count {
                let length = Int.random(in: 0...maxPiece, using: &generator)
                let end = min(bytes.count, index + length)
                pieces.append(Array(bytes[index..<end]))
                index = end
            }
            result.append(pieces)
        }
        return result
    }

    /// Random bytes.
    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = Generator(seed: seed)
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

extension Array where Element == ByteBuffer {
    /// The buffers' bytes joined.
    var joinedBytes: [UInt8] {
        self.flatMap { $0.readableBytesView }
    }
}
