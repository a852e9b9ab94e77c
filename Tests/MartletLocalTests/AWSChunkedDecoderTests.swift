import Crypto
import Foundation
import NIOCore
import Testing

@testable import MartletLocal

@Suite("aws-chunked decoding")
struct AWSChunkedDecoderTests {
    // MARK: Fixtures

    /// The AWS "Transferring Payload in Multiple Chunks" example: 66560 × "a" as 65536 + 1024 + 0.
    static let exampleSeed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    static let exampleChunkSignatures = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ]
    /// aws-c-auth / aws-crt-swift's trailer signature for `first:1st`, `second:2nd`, `third:3rd` after that example.
    static let exampleTrailerSignature = "df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c"

    static func signingKey(secret: String, date: String, region: String, service: String = "s3") -> SymmetricKey {
        func hmac(_ key: [UInt8], _ text: String) -> [UInt8] {
            Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key)))
        }
        let key = hmac(hmac(hmac(hmac(Array("AWS4\(secret)".utf8), date), region), service), "aws4_request")
        return SymmetricKey(data: key)
    }

    static let exampleSigning = AWSChunkedDecoder.ChunkSigning(
        signingKey: signingKey(
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            date: "20130524",
            region: "us-east-1"
        ),
        amzDate: "20130524T000000Z",
        scope: "20130524/us-east-1/s3/aws4_request",
        seedSignature: exampleSeed
    )

    static func exampleBody(trailers: String = "\r\n", corruptSecondChunk: Bool = false) -> [UInt8] {
        var body: [UInt8] = []
        for (size, signature) in zip([65536, 1024, 0], exampleChunkSignatures) {
            body += Array("\(String(size, radix: 16));chunk-signature=\(signature)\r\n".utf8)
            var data = [UInt8](repeating: UInt8(ascii: "a"), count: size)
            if corruptSecondChunk, size == 1024 { data[10] = UInt8(ascii: "b") }
            body += data
            if size > 0 { body += Array("\r\n".utf8) }
        }
        return body + Array(trailers.utf8)
    }

    /// Signs a body the way an SDK does, independently of the decoder, for the trailer modes.
    static func signedBody(
        chunks: [[UInt8]],
        trailers: [(String, String)],
        signing: AWSChunkedDecoder.ChunkSigning
    ) -> [UInt8] {
        let emptyHash = AWSChunkedDecoder.hex(SHA256.hash(data: [UInt8]()))
        var previous = signing.seedSignature
        var body: [UInt8] = []
        for chunk in chunks + [[]] {
            let stringToSign = [
                "AWS4-HMAC-SHA256-PAYLOAD", signing.amzDate, signing.scope, previous, emptyHash,
                AWSChunkedDecoder.hex(SHA256.hash(data: chunk)),
            ].joined(separator: "\n")
            previous = AWSChunkedDecoder.hmacHex(signing.signingKey, stringToSign)
            body += Array("\(String(chunk.count, radix: 16));chunk-signature=\(previous)\r\n".utf8) + chunk
            if !chunk.isEmpty { body += Array("\r\n".utf8) }
        }
        let canonical = trailers.map { "\($0.0):\($0.1)\n" }.joined()
        let stringToSign = [
            "AWS4-HMAC-SHA256-TRAILER", signing.amzDate, signing.scope, previous,
            AWSChunkedDecoder.hex(SHA256.hash(data: Array(canonical.utf8))),
        ].joined(separator: "\n")
        let trailerSignature = AWSChunkedDecoder.hmacHex(signing.signingKey, stringToSign)
        body += Array(canonical.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        body += Array("x-amz-trailer-signature:\(trailerSignature)\r\n\r\n".utf8)
        return body
    }

    struct Outcome: Equatable {
        var payload: [UInt8]
        var trailers: AWSChunkedDecoder.Trailers?
        var error: AWSChunkedError?
        var decodedLength: Int
    }

    static func decode(
        _ pieces: [[UInt8]],
        mode: AWSChunkedDecoder.Mode,
        signing: AWSChunkedDecoder.ChunkSigning? = nil,
        maxChunkSize: Int = 5 << 30
    ) -> Outcome {
        var decoder = AWSChunkedDecoder(mode: mode, signing: signing, maxChunkSize: maxChunkSize)
        var payload: [UInt8] = []
        do {
            for piece in pieces {
                var buffer = ByteBuffer(bytes: piece)
                payload += try decoder.feed(&buffer).joinedBytes
                #expect(buffer.readableBytes == 0, "feed consumes everything")
            }
            let trailers = try decoder.finish()
            return Outcome(payload: payload, trailers: trailers, error: nil, decodedLength: decoder.decodedLength)
        } catch {
            return Outcome(
                payload: payload,
                trailers: nil,
                error: error as? AWSChunkedError,
                decodedLength: decoder.decodedLength
            )
        }
    }

    /// Decodes at every split and checks each agrees with the single-piece result.
    static func decodeAtEverySplit(
        _ body: String,
        mode: AWSChunkedDecoder.Mode,
        signing: AWSChunkedDecoder.ChunkSigning? = nil
    ) -> Outcome {
        let bytes = Array(body.utf8)
        let whole = decode([bytes], mode: mode, signing: signing)
        for pieces in S3SplitFeeding.allSplits(of: bytes) {
            let outcome = decode(pieces, mode: mode, signing: signing)
            #expect(outcome == whole, "split \(pieces.map(\.count))")
        }
        return whole
    }

    // MARK: Unsigned

    @Test("botocore's STREAMING-UNSIGNED-PAYLOAD-TRAILER body decodes at every split")
    func botocoreUnsignedTrailer() {
        let outcome = Self.decodeAtEverySplit(
            "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n",
            mode: .unsignedPayloadTrailer
        )
        #expect(outcome.error == nil)
        #expect(outcome.payload == Array("hello".utf8))
        #expect(outcome.decodedLength == 5)
        #expect(outcome.trailers?["X-Amz-Checksum-CRC32"] == "NhCmhg==")
        #expect(outcome.trailers?.headers == ["x-amz-checksum-crc32": "NhCmhg=="])
    }

    @Test("several chunks, upper-case hex, extensions, and several trailers")
    func unsignedSeveralChunks() {
        let outcome = Self.decodeAtEverySplit(
            "A\r\n0123456789\r\n3;ext=1\r\n\r\n-\r\n000\r\nX-Amz-Checksum-SHA256 :  abc= \r\nx-other:\r\n\r\n",
            mode: .unsignedPayloadTrailer
        )
        #expect(outcome.error == nil)
        #expect(outcome.payload == Array("0123456789\r\n-".utf8))
        #expect(outcome.trailers?.headers == ["x-amz-checksum-sha256": "abc=", "x-other": ""])
    }

    @Test("an empty body with no trailers")
    func unsignedEmpty() {
        let outcome = Self.decodeAtEverySplit("0\r\n\r\n", mode: .unsignedPayloadTrailer)
        #expect(outcome.error == nil)
        #expect(outcome.payload.isEmpty)
        #expect(outcome.trailers?.headers == [:])
    }

    @Test("payload is streamed out before the chunk ends")
    func streamsPartialChunks() throws {
        var decoder = AWSChunkedDecoder(mode: .unsignedPayloadTrailer, signing: nil)
        var first = ByteBuffer(string: "10\r\nabc")
        #expect(try decoder.feed(&first).joinedBytes == Array("abc".utf8))
        var second = ByteBuffer(string: "defghijklmnop\r\n0\r\n\r\n")
        #expect(try decoder.feed(&second).joinedBytes == Array("defghijklmnop".utf8))
        #expect(try decoder.finish().headers.isEmpty)
        #expect(decoder.chunkCount == 2)
    }

    // MARK: Signed

    @Test("the AWS chunked-upload example verifies (one piece, byte by byte, random pieces, cuts near framing)")
    func awsExample() {
        let body = Self.exampleBody()
        let expected = [UInt8](repeating: UInt8(ascii: "a"), count: 66560)
        var splits: [[[UInt8]]] = [[body], body.map { [$0] }]
        splits += S3SplitFeeding.randomSplits(of: body, runs: 5, maxPiece: 9000)
        // Cut around every framing byte: chunk headers, the data's CRLFs and the end.
        let framing = [0, 87, 65623, 65625, 65710, 66734, 66736, 66820, body.count]
        for position in framing {
            for cut in max(0, position - 3)...min(body.count, position + 3) {
                splits.append([Array(body[..<cut]), Array(body[cut...])])
            }
        }
        for pieces in splits {
            let outcome = Self.decode(pieces, mode: .signedPayload, signing: Self.exampleSigning)
            #expect(outcome.error == nil, "split \(pieces.count)")
            #expect(outcome.payload == expected)
            #expect(outcome.decodedLength == 66560)
            #expect(outcome.trailers?.headers == [:])
        }
    }

    @Test("a corrupted chunk fails with SignatureDoesNotMatch at that chunk's end")
    func corruptedChunk() throws {
        let body = Self.exampleBody(corruptSecondChunk: true)
        var decoder = AWSChunkedDecoder(mode: .signedPayload, signing: Self.exampleSigning)
        var firstChunk = ByteBuffer(bytes: body[..<65700])
        #expect(try decoder.feed(&firstChunk).joinedBytes.count == 65536)
        var rest = ByteBuffer(bytes: body[65700...])
        #expect(throws: AWSChunkedError.self) { try decoder.feed(&rest) }
        let outcome = Self.decode([body], mode: .signedPayload, signing: Self.exampleSigning)
        #expect(outcome.error?.kind == .signatureMismatch)
        #expect(outcome.error?.code == "SignatureDoesNotMatch")
        #expect(outcome.error?.httpStatus == 403)
        #expect(outcome.payload.isEmpty, "a feed that throws returns nothing")
        // The failure is sticky.
        #expect(throws: AWSChunkedError.self) { try decoder.finish() }
        var more = ByteBuffer(string: "x")
        #expect(throws: AWSChunkedError.self) { try decoder.feed(&more) }
    }

    @Test("a wrong seed, a wrong final signature, or a wrong key fail")
    func wrongSignatures() {
        var wrongSeed = Self.exampleSigning
        wrongSeed.seedSignature = String(repeating: "0", count: 64)
        #expect(
            Self.decode([Self.exampleBody()], mode: .signedPayload, signing: wrongSeed).error?.kind
                == .signatureMismatch
        )

        var wrongKey = Self.exampleSigning
        wrongKey.signingKey = SymmetricKey(data: [UInt8](repeating: 1, count: 32))
        #expect(
            Self.decode([Self.exampleBody()], mode: .signedPayload, signing: wrongKey).error?.kind == .signatureMismatch
        )

        var body = Self.exampleBody()
        let finalSignature = Array(Self.exampleChunkSignatures[2].utf8)
        let start = body.count - 2 - finalSignature.count - 2
        body[start] = UInt8(ascii: "c")  // b6c6… → c6c6…
        let outcome = Self.decode([body], mode: .signedPayload, signing: Self.exampleSigning)
        #expect(outcome.error?.kind == .signatureMismatch)
    }

    @Test("upper-case chunk signatures are accepted")
    func upperCaseSignature() {
        var body = Self.exampleBody()
        let signature = Array(Self.exampleChunkSignatures[0].uppercased().utf8)
        body.replaceSubrange(22..<86, with: signature)
        #expect(Self.decode([body], mode: .signedPayload, signing: Self.exampleSigning).error == nil)
    }

    @Test("without signing keys a signed body is parsed but not verified")
    func signedWithoutKeys() {
        let outcome = Self.decode([Self.exampleBody(corruptSecondChunk: true)], mode: .signedPayload, signing: nil)
        #expect(outcome.error == nil)
        #expect(outcome.decodedLength == 66560)
    }

    @Test("the trailer signature matches aws-c-auth's vector (first:1st, second:2nd, third:3rd)")
    func awsCRTTrailerVector() {
        let trailers =
            "first:1st\r\nsecond:2nd\r\nthird:3rd\r\nx-amz-trailer-signature:\(Self.exampleTrailerSignature)\r\n\r\n"
        let outcome = Self.decode(
            [Self.exampleBody(trailers: trailers)],
            mode: .signedPayloadTrailer,
            signing: Self.exampleSigning
        )
        #expect(outcome.error == nil)
        #expect(outcome.trailers?.headers == ["first": "1st", "second": "2nd", "third": "3rd"])

        let wrong = trailers.replacingOccurrences(of: "2nd", with: "2ND")
        let tampered = Self.decode(
            [Self.exampleBody(trailers: wrong)],
            mode: .signedPayloadTrailer,
            signing: Self.exampleSigning
        )
        #expect(tampered.error?.kind == .signatureMismatch)
    }

    @Test("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER bodies decode at every split")
    func signedTrailer() {
        let signing = AWSChunkedDecoder.ChunkSigning(
            signingKey: Self.signingKey(secret: "secret", date: "20250115", region: "eu-west-1"),
            amzDate: "20250115T120000Z",
            scope: "20250115/eu-west-1/s3/aws4_request",
            seedSignature: String(repeating: "ab", count: 32)
        )
        let payload = Array("hello world, twice: hello world".utf8)
        let checksum = S3ChecksumHasher.base64Checksum(.crc32c, of: payload)
        let body = Self.signedBody(
            chunks: [Array(payload[..<11]), Array(payload[11...])],
            trailers: [("x-amz-checksum-crc32c", checksum)],
            signing: signing
        )
        let outcome = Self.decodeAtEverySplit(
            String(decoding: body, as: UTF8.self),
            mode: .signedPayloadTrailer,
            signing: signing
        )
        #expect(outcome.error == nil)
        #expect(outcome.payload == payload)
        #expect(outcome.trailers?.headers == ["x-amz-checksum-crc32c": checksum])

        // Missing trailer signature.
        let unsignedEnd = String(decoding: body, as: UTF8.self).replacingOccurrences(
            of: #"x-amz-trailer-signature:[0-9a-f]{64}\r\n"#,
            with: "",
            options: .regularExpression
        )
        #expect(
            Self.decode([Array(unsignedEnd.utf8)], mode: .signedPayloadTrailer, signing: signing).error?.kind
                == .signatureMismatch
        )
        // A trailer after the signature.
        let late = String(decoding: body.dropLast(2), as: UTF8.self) + "x-late:1\r\n\r\n"
        #expect(
            Self.decode([Array(late.utf8)], mode: .signedPayloadTrailer, signing: signing).error?.kind
                == .malformedFraming
        )
    }

    // MARK: Errors

    @Test(
        "malformed framing is rejected",
        arguments: [
            ("5\r\nhelloX\r\n0\r\n\r\n", "data not followed by CRLF"),
            ("5\r\nhello\rX0\r\n\r\n", "CR not followed by LF"),
            ("g\r\n", "non-hex size"),
            ("\r\n", "empty size"),
            (";x\r\n", "no size digits"),
            ("5 \r\nhello\r\n", "space after size"),
            ("5\nhello\r\n0\r\n\r\n", "bare LF"),
            ("0\r\nno-colon\r\n\r\n", "trailer without colon"),
            ("0\r\n:value\r\n\r\n", "trailer without name"),
            ("0\r\n  :value\r\n\r\n", "trailer with blank name"),
            ("0\r\n\r\nX", "bytes after the end"),
            ("0\r\n\r\n\r\n", "CRLF after the end"),
        ]
    )
    func malformed(body: String, reason: String) {
        let outcome = Self.decode([Array(body.utf8)], mode: .unsignedPayloadTrailer)
        #expect(outcome.error?.kind == .malformedFraming, "\(reason)")
        #expect(outcome.error?.code == "InvalidRequest")
        #expect(outcome.error?.httpStatus == 400)
        #expect(outcome.error?.message.hasPrefix("Invalid aws-chunked body: ") == true)
    }

    @Test(
        "signed chunk headers need a well-formed chunk-signature",
        arguments: [
            "5\r\nhello\r\n",
            "5;chunk-signature=abc\r\nhello\r\n",
            "5;chunk-signature=\(String(repeating: "g", count: 64))\r\nhello\r\n",
            "5;chunk-signature=\(String(repeating: "a", count: 65))\r\nhello\r\n",
            "5;signature=\(String(repeating: "a", count: 64))\r\nhello\r\n",
        ]
    )
    func signedHeaderSyntax(body: String) {
        for mode in [AWSChunkedDecoder.Mode.signedPayload, .signedPayloadTrailer] {
            #expect(
                Self.decode([Array(body.utf8)], mode: mode, signing: Self.exampleSigning).error?.kind
                    == .malformedFraming
            )
            #expect(Self.decode([Array(body.utf8)], mode: mode, signing: nil).error?.kind == .malformedFraming)
        }
    }

    @Test("trailers are refused in STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    func noTrailersWhenSignedWithoutTrailer() {
        let outcome = Self.decode(
            [Self.exampleBody(trailers: "x-amz-checksum-crc32:AAAAAA==\r\n\r\n")],
            mode: .signedPayload,
            signing: Self.exampleSigning
        )
        #expect(outcome.error?.kind == .malformedFraming)
    }

    @Test("every truncation of a body is an incomplete body")
    func truncated() {
        let body = Array("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n".utf8)
        for length in 0..<body.count {
            let outcome = Self.decode([Array(body[..<length])], mode: .unsignedPayloadTrailer)
            #expect(outcome.error?.kind == .incompleteBody, "length \(length)")
            #expect(outcome.error?.code == "IncompleteBody")
            #expect(outcome.error?.httpStatus == 400)
        }
        let signed = Self.exampleBody()
        for length in [0, 50, 87, 1000, 65623, 65624, 66734, 66800, signed.count - 1] {
            let outcome = Self.decode([Array(signed[..<length])], mode: .signedPayload, signing: Self.exampleSigning)
            #expect(outcome.error?.kind == .incompleteBody, "length \(length)")
        }
    }

    @Test("oversized and overflowing chunk sizes and long lines are refused")
    func tooLarge() {
        let overflow = Self.decode([Array("1ffffffffffffffff\r\n".utf8)], mode: .unsignedPayloadTrailer)
        #expect(overflow.error?.kind == .chunkTooLarge)
        #expect(overflow.error?.code == "InvalidChunkSizeError")
        let huge = Self.decode([Array("ffffffffffffffff\r\n".utf8)], mode: .unsignedPayloadTrailer)
        #expect(huge.error?.kind == .chunkTooLarge)
        let overLimit = Self.decode([Array("101\r\n".utf8)], mode: .unsignedPayloadTrailer, maxChunkSize: 256)
        #expect(overLimit.error?.kind == .chunkTooLarge)
        let atLimit = Self.decode(
            [Array("100\r\n".utf8) + [UInt8](repeating: 1, count: 256) + Array("\r\n0\r\n\r\n".utf8)],
            mode: .unsignedPayloadTrailer,
            maxChunkSize: 256
        )
        #expect(atLimit.error == nil)

        let longLine = [UInt8](repeating: UInt8(ascii: "0"), count: 4097)
        for pieces in [[longLine], longLine.map { [$0] }] {
            #expect(Self.decode(pieces, mode: .unsignedPayloadTrailer).error?.kind == .chunkTooLarge)
        }
        // 4096 zeros then CRLF is still a (zero-size) line.
        let longestLine = [UInt8](repeating: UInt8(ascii: "0"), count: 4096) + Array("\r\n\r\n".utf8)
        #expect(Self.decode([longestLine], mode: .unsignedPayloadTrailer).error == nil)
        let longTrailer = "0\r\nx-a:" + String(repeating: "v", count: 5000) + "\r\n\r\n"
        #expect(Self.decode([Array(longTrailer.utf8)], mode: .unsignedPayloadTrailer).error?.kind == .chunkTooLarge)
        let manyTrailers =
            "0\r\n" + (0..<400).map { "x-t\($0):" + String(repeating: "v", count: 40) + "\r\n" }.joined() + "\r\n"
        #expect(Self.decode([Array(manyTrailers.utf8)], mode: .unsignedPayloadTrailer).error?.kind == .malformedFraming)
    }

    @Test("modes follow x-amz-content-sha256")
    func modes() {
        #expect(AWSChunkedDecoder.Mode(contentSHA256: "STREAMING-UNSIGNED-PAYLOAD-TRAILER") == .unsignedPayloadTrailer)
        #expect(AWSChunkedDecoder.Mode(contentSHA256: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == .signedPayload)
        #expect(
            AWSChunkedDecoder.Mode(contentSHA256: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") == .signedPayloadTrailer
        )
        #expect(AWSChunkedDecoder.Mode(contentSHA256: "UNSIGNED-PAYLOAD") == nil)
        #expect(AWSChunkedDecoder.Mode(contentSHA256: "STREAMING-ECDSA-P256-SHA256-PAYLOAD") == nil)
        for mode in AWSChunkedDecoder.Mode.allCases {
            #expect(AWSChunkedDecoder.Mode(contentSHA256: mode.contentSHA256) == mode)
        }
        #expect(!AWSChunkedDecoder.Mode.unsignedPayloadTrailer.isSigned)
        #expect(!AWSChunkedDecoder.Mode.signedPayload.hasTrailers)
    }

    @Test("error messages suit S3's XML error body")
    func errorMessages() {
        #expect(
            AWSChunkedError.signatureMismatch("x").message
                == "The request signature we calculated does not match the signature you provided. "
                + "Check your key and signing method."
        )
        #expect(AWSChunkedError.incompleteBody("x").message.contains("Content-Length"))
        #expect(AWSChunkedError.chunkTooLarge("too big").message == "Invalid chunk size: too big.")
        #expect(AWSChunkedError.malformedFraming("x") != AWSChunkedError.malformedFraming("y"))
        #expect("\(AWSChunkedError.malformedFraming("bad"))".contains("bad"))
    }
}
