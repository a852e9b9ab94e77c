import Crypto
import Foundation
import MartletAWS
import Testing

/// Our SHA-256, HMAC-SHA256 and MD5 against swift-crypto's, at every length around the block
/// boundaries, fed whole and in uneven pieces.
@Suite struct DigestTests {
    static let lengths = Array(0...130) + [447, 448, 511, 512, 1000, 4096, 65_537]

    static func message(_ length: Int) -> [UInt8] { (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) } }

    @Test func knownAnswers() {
        #expect(Hex.encode(SHA256Hasher.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.encode(SHA256Hasher.hash([UInt8]())) == SHA256Hex.empty)
        #expect(Hex.encode(MD5Hasher.hash(Array("The quick brown fox jumps over the lazy dog".utf8))) == "9e107d9d372bb6826bd81d3542a419d6")
        // RFC 4231 test case 2.
        #expect(
            Hex.encode(HMACSHA256.authenticationCode(for: Array("what do ya want for nothing?".utf8), key: Array("Jefe".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test(arguments: lengths) func sha256MatchesSwiftCrypto(length: Int) {
        let message = Self.message(length)
        let expected = Array(SHA256.hash(data: message))
        #expect(SHA256Hasher.hash(message) == expected)
        // Both compression functions: the CPU's SHA instructions (where this machine has them) and portable Swift.
        for implementation in [SHA256Hasher.Implementation.cpuInstructions, .portable] {
            var whole = SHA256Hasher(implementation: implementation)
            whole.update(message)
            #expect(whole.finalize() == expected, "\(implementation)")
            var pieces = SHA256Hasher(implementation: implementation)
            var offset = 0
            var step = 1
            while offset < message.count {
                let end = min(message.count, offset + step)
                pieces.update(message[offset..<end])
                offset = end
                step = step * 2 + 1
            }
            #expect(pieces.finalize() == expected, "\(implementation)")
        }
    }

    /// The machines we build and test on have SHA instructions: a CPU check that went wrong would
    /// silently fall back to the slower portable code.
    @Test func cpuInstructionsAreFoundWhereTheCPUHasThem() throws {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let cpuHasSHA = flags.split(separator: "\n").contains { $0.hasPrefix("flags") && $0.split(separator: " ").contains("sha_ni") }
        #expect(SHA256Hasher.cpuHasInstructions == cpuHasSHA)
    }

    @Test(arguments: lengths) func md5MatchesSwiftCrypto(length: Int) {
        let message = Self.message(length)
        let expected = Array(Insecure.MD5.hash(data: message))
        #expect(MD5Hasher.hash(message) == expected)
        var pieces = MD5Hasher()
        for chunk in stride(from: 0, to: message.count, by: 7) { pieces.update(message[chunk..<min(message.count, chunk + 7)]) }
        #expect(pieces.finalize() == expected)
    }

    @Test(arguments: [0, 1, 32, 63, 64, 65, 200]) func hmacMatchesSwiftCrypto(keyLength: Int) {
        let key = Self.message(keyLength).map { $0 ^ 0xA5 }
        for length in [0, 1, 55, 64, 300] {
            let message = Self.message(length)
            let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
            #expect(HMACSHA256.authenticationCode(for: message, key: key) == expected)
        }
    }
}

@Suite struct RandomUUIDTests {
    @Test func versionFourAndUnique() throws {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let text = RandomUUID.lowercased()
            let parsed = try #require(UUID(uuidString: text))
            #expect(parsed.uuidString.lowercased() == text)
            #expect(Array(text)[14] == "4" && "89ab".contains(Array(text)[19]))
            seen.insert(text)
        }
        #expect(seen.count == 1000)
    }
}
