import NIOCore
import Testing

@testable import MartletLocal

@Suite("multipart/form-data parsing")
struct MultipartFormParserTests {
    /// A part as seen by a caller that joins body events.
    struct Part: Equatable {
        var headers: MultipartPartHeaders
        var body: [UInt8]
        var ended: Bool
    }

    struct Outcome: Equatable {
        var parts: [Part]
        var error: MultipartFormError?
    }

    static func parse(_ pieces: [[UInt8]], boundary: String, maxHeaderBytes: Int = 16 * 1024) -> Outcome {
        var parser = MultipartFormParser(boundary: boundary, maxHeaderBytes: maxHeaderBytes)
        var parts: [Part] = []
        do {
            for piece in pieces {
                var buffer = ByteBuffer(bytes: piece)
                for event in try parser.feed(&buffer) {
                    switch event {
                    case .partHeaders(let headers):
                        #expect(parts.last?.ended ?? true, "headers only after the previous part ended")
                        parts.append(Part(headers: headers, body: [], ended: false))
                    case .body(let bytes):
                        #expect(bytes.readableBytes > 0, "no empty body events")
                        #expect(parts.last?.ended == false)
                        parts[parts.count - 1].body += bytes.readableBytesView
                    case .partEnd:
                        #expect(parts.last?.ended == false)
                        parts[parts.count - 1].ended = true
                    }
                }
                #expect(buffer.readableBytes == 0)
            }
            try parser.finish()
            return Outcome(parts: parts, error: nil)
        } catch {
            return Outcome(parts: parts, error: error as? MultipartFormError)
        }
    }

    /// Parses at every split, checks all agree, and returns the result.
    static func parseAtEverySplit(_ body: [UInt8], boundary: String, randomRuns: Int = 20) -> Outcome {
        let whole = parse([body], boundary: boundary)
        for pieces in S3SplitFeeding.allSplits(of: body, randomRuns: randomRuns) {
            let outcome = parse(pieces, boundary: boundary)
            if outcome != whole {
                Issue.record("split \(pieces.map(\.count)) differs")
                break
            }
        }
        return whole
    }

    static func form(boundary: String, fields: [(String, String)], file: (name: String, type: String, bytes: [UInt8])?)
        -> [UInt8]
    {
        var body: [UInt8] = []
        for (name, value) in fields {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        if let file {
            body += Array(
                ("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(file.name)\"\r\n"
                    + "Content-Type: \(file.type)\r\n\r\n").utf8
            )
            body += file.bytes
            body += Array("\r\n".utf8)
        }
        return body + Array("--\(boundary)--\r\n".utf8)
    }

    static let requestsBoundary = "5b3f2c9e1f0b4d3a9b8c7d6e5f4a3b2c"
    static let presignedFields = [
        ("Content-Type", "image/png"),
        ("key", "uploads/job-123/${filename}"),
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ("x-amz-credential", "AKIDLOCALEXAMPLE/20250115/us-east-1/s3/aws4_request"),
        ("x-amz-date", "20250115T120000Z"),
        ("policy", "eyJleHBpcmF0aW9uIjogIjIwMjUtMDEtMTVUMTM6MDA6MDBaIiwgImNvbmRpdGlvbnMiOiBbXX0="),
        ("x-amz-signature", "c9fa4952095c2de5744c772c05a28bf12d0c7a14681de851044746279c47185e"),
    ]

    // MARK: Content type

    @Test("the boundary comes from the content type, quoted or not, parameters in any case")
    func boundaryFromContentType() {
        typealias P = MultipartFormParser
        #expect(P.boundary(fromContentType: "multipart/form-data; boundary=abc") == "abc")
        #expect(P.boundary(fromContentType: "Multipart/Form-Data;BOUNDARY=abc") == "abc")
        #expect(P.boundary(fromContentType: "multipart/form-data; boundary=\"a b;c=d\"") == "a b;c=d")
        #expect(
            P.boundary(fromContentType: "multipart/form-data; charset=utf-8; Boundary = \"x\\\"y\" ; z=1") == "x\"y"
        )
        #expect(
            P.boundary(fromContentType: "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW")
                == "----WebKitFormBoundary7MA4YWxkTrZu0gW"
        )
        #expect(P.boundary(fromContentType: "multipart/mixed; boundary=abc") == nil)
        #expect(P.boundary(fromContentType: "multipart/form-data") == nil)
        #expect(P.boundary(fromContentType: "multipart/form-data; boundary=") == nil)
        #expect(P.boundary(fromContentType: "multipart/form-data; boundary=\"\"") == nil)
        #expect(P.boundary(fromContentType: "application/x-www-form-urlencoded") == nil)
    }

    // MARK: Happy paths

    @Test("a presigned-POST form as requests sends it parses identically at every split")
    func requestsForm() {
        let file = Array("PNG\u{0}\u{1}binary\r\n--not-a-boundary\r\n".utf8)
        let body = Self.form(
            boundary: Self.requestsBoundary,
            fields: Self.presignedFields,
            file: ("photo.png", "image/png", file)
        )
        let outcome = Self.parseAtEverySplit(body, boundary: Self.requestsBoundary)
        #expect(outcome.error == nil)
        #expect(outcome.parts.count == 8)
        #expect(outcome.parts.allSatisfy { $0.ended })
        for (part, (name, value)) in zip(outcome.parts, Self.presignedFields) {
            #expect(part.headers.name == name)
            #expect(part.headers.filename == nil)
            #expect(part.headers.contentType == nil)
            #expect(part.body == Array(value.utf8))
        }
        let filePart = outcome.parts[7].headers
        #expect(filePart.name == "file")
        #expect(filePart.filename == "photo.png")
        #expect(filePart.contentType == "image/png")
        #expect(filePart["content-type"] == "image/png")
        #expect(filePart.fields.count == 2)
        #expect(outcome.parts[7].body == file)
    }

    @Test("binary content with dashes, CR/LF and partial boundaries survives every split")
    func trickyContent() {
        let boundary = "----WebKitFormBoundaryABC"
        var content: [UInt8] = Array("--\r\n\r\r\n\n-".utf8)
        content += Array("\r\n--".utf8)
        content += Array("\r\n------WebKitFormBoundaryAB".utf8)  // one byte short
        content += Array("\r\n------WebKitFormBoundaryABD".utf8)  // last byte differs
        content += Array("------WebKitFormBoundaryABC".utf8)  // no CRLF before: not a delimiter
        content += Array("\n------WebKitFormBoundaryABC".utf8)  // bare LF: not a delimiter
        content += Array("\r------WebKitFormBoundaryABC".utf8)  // bare CR: not a delimiter
        content += [0, 255, 13]
        let body = Self.form(
            boundary: boundary,
            fields: [("key", "a\r\nb")],
            file: ("x.bin", "application/octet-stream", content)
        )
        let outcome = Self.parseAtEverySplit(body, boundary: boundary)
        #expect(outcome.error == nil)
        #expect(outcome.parts.map(\.body) == [Array("a\r\nb".utf8), content])
    }

    @Test("random binary files survive random splits")
    func randomFiles() {
        let boundary = "b"
        for seed in 0..<20 as Range<UInt64> {
            // Bias the content towards delimiter bytes.
            let content = S3SplitFeeding.randomBytes(300, seed: seed).map { [13, 10, 45, 98, $0][Int($0 % 5)] }
            let body = Self.form(boundary: boundary, fields: [], file: ("f", "x/y", content))
            let contains = content.indices.contains { content[$0...].starts(with: Array("\r\n--b".utf8)) }
            let outcome = Self.parse([body], boundary: boundary)
            if contains {
                // A body holding the delimiter ends the part there; the error must not depend on the splits.
                for pieces in S3SplitFeeding.randomSplits(of: body, runs: 10, seed: seed) {
                    #expect(Self.parse(pieces, boundary: boundary).error == outcome.error)
                }
                continue
            }
            #expect(outcome.error == nil)
            #expect(outcome.parts.first?.body == content)
            for pieces in S3SplitFeeding.randomSplits(of: body, runs: 10, seed: seed) + [body.map { [$0] }] {
                #expect(Self.parse(pieces, boundary: boundary) == outcome)
            }
        }
    }

    @Test("an empty file and an empty form")
    func emptyParts() {
        let body = Self.form(boundary: "xyz", fields: [("key", "")], file: ("empty.txt", "text/plain", []))
        let outcome = Self.parseAtEverySplit(body, boundary: "xyz")
        #expect(outcome.error == nil)
        #expect(outcome.parts.map(\.body) == [[], []])
        #expect(outcome.parts.map(\.ended) == [true, true])

        let empty = Self.parseAtEverySplit(Array("--xyz--".utf8), boundary: "xyz")
        #expect(empty == Outcome(parts: [], error: nil))
    }

    @Test("the preamble and epilogue are ignored, transport padding is allowed")
    func preambleEpilogue() {
        let body = Array(
            ("This is the preamble.\r\n--xy-not\r\n\r\n-\r\n--xyz \t\r\ncontent-disposition: FORM-DATA; NAME=a\r\n\r\n1\r\n"
                + "--xyz--\r\nepilogue --xyz\r\n--xyz\r\n").utf8
        )
        let outcome = Self.parseAtEverySplit(body, boundary: "xyz")
        #expect(outcome.error == nil)
        #expect(outcome.parts.map(\.headers.name) == ["a"])
        #expect(outcome.parts.map(\.body) == [Array("1".utf8)])
    }

    @Test("Content-Disposition parameters: quoting, escapes, case, folding")
    func dispositionParameters() {
        let body = Array(
            ("--q\r\nX-Extra: 1\r\nCONTENT-DISPOSITION:form-data;filename=\"say \\\"hi\\\"; ok.txt\";Name=\"fi\\\\le\"\r\n"
                + "content-type: text/plain;\r\n charset=utf-8\r\n\r\nhi\r\n--q--").utf8
        )
        let outcome = Self.parseAtEverySplit(body, boundary: "q")
        #expect(outcome.error == nil)
        let headers = outcome.parts.first?.headers
        #expect(headers?.name == "fi\\le")
        #expect(headers?.filename == "say \"hi\"; ok.txt")
        #expect(headers?.contentType == "text/plain; charset=utf-8")
        #expect(headers?["x-extra"] == "1")
        #expect(headers?.fields.map(\.name) == ["X-Extra", "CONTENT-DISPOSITION", "content-type"])

        let utf8 = Self.parse(
            [
                Array(
                    "--q\r\nContent-Disposition: form-data; name=\"file\"; filename=\"résumé.pdf\"\r\n\r\n\r\n--q--"
                        .utf8
                )
            ],
            boundary: "q"
        )
        #expect(utf8.parts.first?.headers.filename == "résumé.pdf")
        #expect(utf8.parts.first?.body == [])
    }

    @Test("body bytes are released unless they could start a delimiter")
    func holdsBackOnlyPossibleDelimiters() throws {
        var parser = MultipartFormParser(boundary: "boundary")
        var head = ByteBuffer(string: "--boundary\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n0123456789")
        let first = try parser.feed(&head)
        #expect(first.count == 2)
        #expect(first.last == .body(ByteBuffer(string: "0123456789")))

        var partial = ByteBuffer(string: "abc\r\n--bounda")
        #expect(try parser.feed(&partial) == [.body(ByteBuffer(string: "abc"))])
        var notDelimiter = ByteBuffer(string: "rY")
        let released = try parser.feed(&notDelimiter)
        #expect(
            released.compactMap { if case .body(let b) = $0 { Array(b.readableBytesView) } else { nil } }.flatMap { $0 }
                == Array("\r\n--boundarY".utf8)
        )

        var crOnly = ByteBuffer(string: "x\r")
        #expect(try parser.feed(&crOnly) == [.body(ByteBuffer(string: "x"))])
        var end = ByteBuffer(string: "\n--boundary--")
        #expect(try parser.feed(&end) == [.partEnd])
        try parser.finish()
    }

    @Test("a large file streams through in constant memory")
    func largeFile() throws {
        var parser = MultipartFormParser(boundary: "big")
        var head = ByteBuffer(string: "--big\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n")
        _ = try parser.feed(&head)
        let chunk = ByteBuffer(repeating: UInt8(ascii: "z"), count: 1 << 20)
        var total = 0
        for _ in 0..<16 {
            var piece = chunk
            for event in try parser.feed(&piece) {
                guard case .body(let bytes) = event else {
                    Issue.record("unexpected \(event)")
                    continue
                }
                total += bytes.readableBytes
            }
            #expect(total % (1 << 20) == 0, "every byte is released at once")
        }
        var tail = ByteBuffer(string: "\r\n--big--\r\n")
        #expect(try parser.feed(&tail) == [.partEnd])
        try parser.finish()
        #expect(total == 16 << 20)
    }

    // MARK: Errors

    @Test("every truncation lacks the closing delimiter")
    func truncated() {
        let body = Self.form(boundary: "xyz", fields: [("key", "v")], file: ("a", "b/c", Array("data".utf8)))
        let closeStart = body.count - "--xyz--\r\n".utf8.count
        for length in 0..<(closeStart + 7) {
            let outcome = Self.parse([Array(body[..<length])], boundary: "xyz")
            #expect(outcome.error == .missingClosingDelimiter, "length \(length)")
        }
        #expect(Self.parse([Array(body[..<(closeStart + 7)])], boundary: "xyz").error == nil)
        #expect(MultipartFormError.missingClosingDelimiter.code == "MalformedPOSTRequest")
        #expect(MultipartFormError.missingClosingDelimiter.httpStatus == 400)
    }

    @Test("headers larger than the limit are refused at every split")
    func headersTooLarge() {
        let value = String(repeating: "v", count: 200)
        let body = Array(
            "--x\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Big: \(value)\r\n\r\nbody\r\n--x--".utf8
        )
        for pieces in S3SplitFeeding.allSplits(of: body, randomRuns: 5) {
            #expect(Self.parse(pieces, boundary: "x", maxHeaderBytes: 128).error == .headersTooLarge(limit: 128))
            #expect(Self.parse(pieces, boundary: "x", maxHeaderBytes: 512).error == nil)
        }
    }

    @Test(
        "parts must be form-data with a name",
        arguments: [
            ("Content-Type: text/plain", MultipartFormError.missingContentDisposition),
            ("Content-Disposition: attachment; name=\"a\"", .missingName),
            ("Content-Disposition: form-data; filename=\"a\"", .missingName),
            ("Content-Disposition: form-data", .missingName),
        ]
    )
    func partHeaderErrors(header: String, error: MultipartFormError) {
        let body = Array("--x\r\n\(header)\r\n\r\nbody\r\n--x--".utf8)
        #expect(Self.parseAtEverySplit(body, boundary: "x", randomRuns: 2).error == error)
        let noHeaders = Array("--x\r\n\r\nbody\r\n--x--".utf8)
        #expect(Self.parse([noHeaders], boundary: "x").error == .missingContentDisposition)
    }

    @Test(
        "malformed delimiters and header lines",
        arguments: [
            "--xy\r\n",  // a delimiter followed by garbage
            "--x-y\r\n",  // a single dash
            "--x \tz\r\n",  // padding then garbage
            "--x\r\r\n",  // CR not followed by LF
            "--x\r\nno colon here\r\n\r\n",
            "--x\r\n: empty name\r\n\r\n",
        ]
    )
    func malformed(body: String) {
        let outcome = Self.parse([Array(body.utf8)], boundary: "x")
        #expect(outcome.error != nil)
        #expect(outcome.error != .missingClosingDelimiter)
    }

    @Test("invalid boundaries fail on first use", arguments: ["", String(repeating: "b", count: 71), "a\r\nb"])
    func invalidBoundary(boundary: String) {
        var parser = MultipartFormParser(boundary: boundary)
        var buffer = ByteBuffer(string: "--")
        #expect(throws: MultipartFormError.invalidBoundary) { try parser.feed(&buffer) }
        var other = MultipartFormParser(boundary: boundary)
        #expect(throws: MultipartFormError.invalidBoundary) { try other.finish() }
    }

    @Test("errors are sticky")
    func sticky() {
        var parser = MultipartFormParser(boundary: "x")
        var bad = ByteBuffer(string: "--x\r\n\r\n")
        #expect(throws: MultipartFormError.missingContentDisposition) { try parser.feed(&bad) }
        var more = ByteBuffer(string: "anything")
        #expect(throws: MultipartFormError.missingContentDisposition) { try parser.feed(&more) }
        #expect(throws: MultipartFormError.missingContentDisposition) { try parser.finish() }
    }
}
