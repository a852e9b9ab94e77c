@preconcurrency import Crypto
import NIOCore

/// An incremental decoder for S3 request bodies sent with `Content-Encoding: aws-chunked`.
///
/// Payload bytes are handed out as soon as they arrive (as slices of the fed buffer). In the signed modes a
/// chunk's signature can only be checked at the chunk's end, so `feed` may throw after it has already returned
/// that chunk's bytes: on any error the caller discards everything it received.
///
/// ```swift
/// var decoder = AWSChunkedDecoder(mode: .unsignedPayloadTrailer, signing: nil)
/// var body = ByteBuffer(string: "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n")
/// let payload = try decoder.feed(&body)       // ["hello"]
/// let trailers = try decoder.finish()         // ["x-amz-checksum-crc32": "NhCmhg=="]
/// ```
struct AWSChunkedDecoder: Sendable {
    /// The body framing, chosen from the `x-amz-content-sha256` header.
    enum Mode: Sendable, Hashable, CaseIterable {
        /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: plain chunks, then trailer headers.
        case unsignedPayloadTrailer
        /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: signed chunks, no trailers.
        case signedPayload
        /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks, trailers, then a trailer signature.
        case signedPayloadTrailer

        /// The mode for an `x-amz-content-sha256` value, or `nil` if the body is not aws-chunked.
        init?(contentSHA256: String) {
            guard let mode = Self.allCases.first(where: { $0.contentSHA256 == contentSHA256 }) else { return nil }
            self = mode
        }

        /// The `x-amz-content-sha256` value that selects this mode.
        var contentSHA256: String {
            switch self {
            case .unsignedPayloadTrailer: "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            case .signedPayload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
            case .signedPayloadTrailer: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
            }
        }

        /// Whether each chunk carries a `chunk-signature`.
        var isSigned: Bool { self != .unsignedPayloadTrailer }

        /// Whether trailer headers may follow the final chunk.
        var hasTrailers: Bool { self != .signedPayload }
    }

    /// What is needed to verify chunk and trailer signatures, taken from the verified request.
    struct ChunkSigning: Sendable {
        /// The SigV4 signing key (`kSigning`).
        var signingKey: SymmetricKey
        /// The request's `x-amz-date`, `YYYYMMDDTHHMMSSZ`.
        var amzDate: String
        /// The credential scope, `date/region/s3/aws4_request`.
        var scope: String
        /// The signature from the `Authorization` header, which seeds the chunk signature chain.
        var seedSignature: String
    }

    /// The trailer headers that followed the final chunk (the trailer signature is not included).
    struct Trailers: Sendable, Hashable {
        /// Lowercased header names to their values, whitespace-trimmed.
        var headers: [String: String]

        /// The value of a trailer header (case-insensitive name).
        subscript(name: String) -> String? { self.headers[name.lowercased()] }
    }

    /// The longest chunk-size or trailer line accepted, CRLF excluded.
    static let maxLineLength = 4096
    /// The most trailer bytes accepted in all.
    static let maxTrailerBytes = 16 * 1024
    private static let emptySHA256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    private static let chunkSignaturePrefix = Array(";chunk-signature=".utf8)
    private static let trailerSignatureName = "x-amz-trailer-signature"

    private enum State {
        case chunkHeader
        case chunkData(remaining: Int)
        case chunkDataEnd(crSeen: Bool)
        case trailers
        case done
        case failed(AWSChunkedError)
    }

    /// The framing mode.
    let mode: Mode
    /// The largest chunk accepted.
    let maxChunkSize: Int
    private let signing: ChunkSigning?
    private var state: State = .chunkHeader
    private var line: [UInt8] = []
    private var previousSignature: String
    private var chunkSignature: String = ""
    private var chunkHasher = SHA256()
    private var canonicalTrailers: [UInt8] = []
    private var trailerBytes = 0
    private var trailers = Trailers(headers: [:])
    private var trailerSignatureSeen = false

    /// Payload bytes decoded so far, to compare with `x-amz-decoded-content-length`.
    private(set) var decodedLength: Int = 0
    /// Chunks started so far, the final zero-length one included.
    private(set) var chunkCount: Int = 0

    /// Creates a decoder.
    /// - Parameters:
    ///   - mode: the framing, from `x-amz-content-sha256`.
    ///   - signing: the keys to verify signatures with; with `nil`, signed modes parse but do not verify signatures.
    ///   - maxChunkSize: the largest chunk accepted (default 5 GiB, S3's largest single upload).
    init(mode: Mode, signing: ChunkSigning?, maxChunkSize: Int = 5 * 1024 * 1024 * 1024) {
        self.mode = mode
        self.signing = mode.isSigned ? signing : nil
        self.maxChunkSize = maxChunkSize
        self.previousSignature = signing?.seedSignature.lowercased() ?? ""
    }

    /// Consumes all of `buffer` and returns the payload bytes decoded from it, in order.
    /// - Throws: ``AWSChunkedError``; the decoder then stays failed.
    mutating func feed(_ buffer: inout ByteBuffer) throws -> [ByteBuffer] {
        var output: [ByteBuffer] = []
        do {
            while buffer.readableBytes > 0 {
                switch self.state {
                case .chunkHeader:
                    if let line = try self.readLine(from: &buffer) {
                        try self.parseChunkHeader(line)
                    }
                case .chunkData(let remaining):
                    let count = min(remaining, buffer.readableBytes)
                    let slice = buffer.readSlice(length: count)!
                    if self.signing != nil {
                        slice.withUnsafeReadableBytes { self.chunkHasher.update(bufferPointer: $0) }
                    }
                    self.decodedLength += count
                    output.append(slice)
                    if remaining == count {
                        try self.verifyChunkSignature()
                        self.state = .chunkDataEnd(crSeen: false)
                    } else {
                        self.state = .chunkData(remaining: remaining - count)
                    }
                case .chunkDataEnd(let crSeen):
                    let byte = buffer.readInteger(as: UInt8.self)!
                    if !crSeen, byte == UInt8(ascii: "\r") {
                        self.state = .chunkDataEnd(crSeen: true)
                    } else if crSeen, byte == UInt8(ascii: "\n") {
                        self.state = .chunkHeader
                    } else {
                        throw AWSChunkedError.malformedFraming("chunk data is not followed by CRLF")
                    }
                case .trailers:
                    if let line = try self.readLine(from: &buffer) {
                        try self.parseTrailerLine(line)
                    }
                case .done:
                    throw AWSChunkedError.malformedFraming("data after the end of the aws-chunked body")
                case .failed(let error):
                    throw error
                }
            }
        } catch let error as AWSChunkedError {
            self.state = .failed(error)
            throw error
        }
        return output
    }

    /// Ends the body and returns its trailers.
    /// - Throws: ``AWSChunkedError/incompleteBody(_:)`` if the body ended early, or the earlier error.
    mutating func finish() throws -> Trailers {
        switch self.state {
        case .done:
            return self.trailers
        case .failed(let error):
            throw error
        case .chunkHeader, .chunkData, .chunkDataEnd, .trailers:
            let error = AWSChunkedError.incompleteBody("the aws-chunked body ended before its final chunk")
            self.state = .failed(error)
            throw error
        }
    }

    // MARK: - Lines

    /// Returns a complete CRLF-terminated line (without CRLF), or `nil` after buffering a partial one.
    private mutating func readLine(from buffer: inout ByteBuffer) throws -> [UInt8]? {
        let newline = buffer.withUnsafeReadableBytes { $0.firstIndex(of: UInt8(ascii: "\n")) }
        let take = newline.map { $0 + 1 } ?? buffer.readableBytes
        guard self.line.count + take <= Self.maxLineLength + 2 else {
            throw AWSChunkedError.chunkTooLarge(
                "a chunk-size or trailer line is longer than \(Self.maxLineLength) bytes"
            )
        }
        self.line.append(contentsOf: buffer.readBytes(length: take)!)
        // Beyond the limit a line may only hold its CR (and LF).
        let terminator = newline != nil ? 2 : (self.line.last == UInt8(ascii: "\r") ? 1 : 0)
        guard self.line.count - terminator <= Self.maxLineLength else {
            throw AWSChunkedError.chunkTooLarge(
                "a chunk-size or trailer line is longer than \(Self.maxLineLength) bytes"
            )
        }
        guard newline != nil else { return nil }
        defer { self.line.removeAll(keepingCapacity: true) }
        guard self.line.count >= 2, self.line[self.line.count - 2] == UInt8(ascii: "\r") else {
            throw AWSChunkedError.malformedFraming("a line is not terminated by CRLF")
        }
        return Array(self.line.dropLast(2))
    }

    // MARK: - Chunks

    private mutating func parseChunkHeader(_ line: [UInt8]) throws {
        var size = 0
        var index = 0
        while index < line.count, let digit = Self.hexValue(line[index]) {
            let (shifted, overflow1) = size.multipliedReportingOverflow(by: 16)
            let (sum, overflow2) = shifted.addingReportingOverflow(digit)
            guard !overflow1, !overflow2, sum <= self.maxChunkSize else {
                throw AWSChunkedError.chunkTooLarge("chunk size exceeds \(self.maxChunkSize) bytes")
            }
            size = sum
            index += 1
        }
        guard index > 0 else {
            throw AWSChunkedError.malformedFraming("chunk size is not hexadecimal")
        }
        let rest = line[index...]
        if self.mode.isSigned {
            let signature = rest.dropFirst(Self.chunkSignaturePrefix.count)
            guard rest.starts(with: Self.chunkSignaturePrefix), signature.count == 64,
                signature.allSatisfy({ Self.hexValue($0) != nil })
            else {
                throw AWSChunkedError.malformedFraming("chunk header lacks a valid chunk-signature")
            }
            self.chunkSignature = String(decoding: signature, as: UTF8.self).lowercased()
        } else if let first = rest.first, first != UInt8(ascii: ";") {
            // Unsigned chunks may carry extensions after ';', which are ignored.
            throw AWSChunkedError.malformedFraming("chunk size is not hexadecimal")
        }
        self.chunkCount += 1
        if size == 0 {
            try self.verifyChunkSignature()
            self.state = .trailers
        } else {
            self.state = .chunkData(remaining: size)
        }
    }

    private mutating func verifyChunkSignature() throws {
        guard let signing = self.signing else { return }
        let chunkHash = Self.hex(self.chunkHasher.finalize())
        self.chunkHasher = SHA256()
        let stringToSign =
            "AWS4-HMAC-SHA256-PAYLOAD\n\(signing.amzDate)\n\(signing.scope)\n\(self.previousSignature)\n"
            + "\(Self.emptySHA256Hex)\n\(chunkHash)"
        let expected = Self.hmacHex(signing.signingKey, stringToSign)
        guard Self.constantTimeEqual(expected, self.chunkSignature) else {
            throw AWSChunkedError.signatureMismatch("chunk \(self.chunkCount) has a wrong chunk-signature")
        }
        self.previousSignature = expected
    }

    // MARK: - Trailers

    private mutating func parseTrailerLine(_ line: [UInt8]) throws {
        if line.isEmpty {
            if self.mode == .signedPayloadTrailer, self.signing != nil, !self.trailerSignatureSeen {
                throw AWSChunkedError.signatureMismatch("the trailers have no x-amz-trailer-signature")
            }
            self.state = .done
            return
        }
        guard self.mode.hasTrailers else {
            throw AWSChunkedError.malformedFraming("the final chunk is not followed by CRLF")
        }
        guard !self.trailerSignatureSeen else {
            throw AWSChunkedError.malformedFraming("a trailer follows x-amz-trailer-signature")
        }
        self.trailerBytes += line.count + 2
        guard self.trailerBytes <= Self.maxTrailerBytes else {
            throw AWSChunkedError.malformedFraming("the trailers are longer than \(Self.maxTrailerBytes) bytes")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
            throw AWSChunkedError.malformedFraming("a trailer line has no name")
        }
        let name = Self.trimmed(line[..<colon]).lowercased()
        let value = Self.trimmed(line[(colon + 1)...])
        guard !name.isEmpty else {
            throw AWSChunkedError.malformedFraming("a trailer line has no name")
        }
        if self.mode == .signedPayloadTrailer, name == Self.trailerSignatureName {
            self.trailerSignatureSeen = true
            try self.verifyTrailerSignature(value)
            return
        }
        // The trailer signature covers each trailer line as sent, with LF instead of CRLF.
        self.canonicalTrailers.append(contentsOf: line)
        self.canonicalTrailers.append(UInt8(ascii: "\n"))
        self.trailers.headers[name] = value
    }

    private func verifyTrailerSignature(_ provided: String) throws {
        guard let signing = self.signing else { return }
        let trailerHash = Self.hex(SHA256.hash(data: self.canonicalTrailers))
        let stringToSign =
            "AWS4-HMAC-SHA256-TRAILER\n\(signing.amzDate)\n\(signing.scope)\n\(self.previousSignature)\n\(trailerHash)"
        let expected = Self.hmacHex(signing.signingKey, stringToSign)
        guard Self.constantTimeEqual(expected, provided.lowercased()) else {
            throw AWSChunkedError.signatureMismatch("the x-amz-trailer-signature is wrong")
        }
    }

    // MARK: - Helpers

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> String {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let start = bytes.firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = bytes.lastIndex(where: { !isSpace($0) })!
        return String(decoding: bytes[start...end], as: UTF8.self)
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hmacHex(_ key: SymmetricKey, _ string: String) -> String {
        Self.hex(HMAC<SHA256>.authenticationCode(for: Array(string.utf8), using: key))
    }

    private static func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool { SignatureVerifier.constantTimeEqual(lhs, rhs) }
}

/// A failure to decode an aws-chunked body, carrying the S3 error it maps to.
struct AWSChunkedError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case malformedFraming, signatureMismatch, incompleteBody, chunkTooLarge
        }
        private let base: Base

        /// The chunk framing (sizes, CRLFs, signatures' syntax, trailers) is invalid.
        static let malformedFraming = Kind(base: .malformedFraming)
        /// A chunk or trailer signature does not match.
        static let signatureMismatch = Kind(base: .signatureMismatch)
        /// The body ended before the final chunk and its trailers.
        static let incompleteBody = Kind(base: .incompleteBody)
        /// A chunk size overflows, exceeds the limit, or its line is too long.
        static let chunkTooLarge = Kind(base: .chunkTooLarge)

        var description: String { "\(self.base)" }
    }

    /// What went wrong.
    let kind: Kind
    /// Detail for logs (not sent to clients).
    let detail: String

    /// Invalid framing.
    static func malformedFraming(_ detail: String) -> Self { Self(kind: .malformedFraming, detail: detail) }
    /// A wrong chunk or trailer signature.
    static func signatureMismatch(_ detail: String) -> Self { Self(kind: .signatureMismatch, detail: detail) }
    /// A truncated body.
    static func incompleteBody(_ detail: String) -> Self { Self(kind: .incompleteBody, detail: detail) }
    /// An oversized or overflowing chunk size.
    static func chunkTooLarge(_ detail: String) -> Self { Self(kind: .chunkTooLarge, detail: detail) }

    /// The S3 error code for the XML error body.
    var code: String {
        switch self.kind {
        case .signatureMismatch: "SignatureDoesNotMatch"
        case .incompleteBody: "IncompleteBody"
        case .chunkTooLarge: "InvalidChunkSizeError"
        default: "InvalidRequest"
        }
    }

    /// The HTTP status S3 answers with.
    var httpStatus: Int {
        self.kind == .signatureMismatch ? 403 : 400
    }

    /// The message for the XML error body.
    var message: String {
        switch self.kind {
        case .signatureMismatch:
            "The request signature we calculated does not match the signature you provided. "
                + "Check your key and signing method."
        case .incompleteBody:
            "You did not provide the number of bytes specified by the Content-Length HTTP header."
        case .chunkTooLarge:
            "Invalid chunk size: \(self.detail)."
        default:
            "Invalid aws-chunked body: \(self.detail)."
        }
    }

    var description: String { "AWSChunkedError.\(self.kind): \(self.detail)" }
}
