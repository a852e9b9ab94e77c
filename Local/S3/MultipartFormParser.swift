import NIOCore

/// The headers of one `multipart/form-data` part.
struct MultipartPartHeaders: Sendable, Equatable {
    /// One header line, name as sent.
    struct Field: Sendable, Hashable {
        var name: String
        var value: String
    }

    /// The `name` parameter of `Content-Disposition`.
    var name: String
    /// The `filename` parameter of `Content-Disposition`, if any.
    var filename: String?
    /// The part's `Content-Type`, if any.
    var contentType: String?
    /// Every header of the part, in order.
    var fields: [Field]

    /// The first value of a header (case-insensitive name).
    subscript(name: String) -> String? {
        self.fields.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// An incremental `multipart/form-data` parser (RFC 7578 / RFC 2046) that never buffers a part's body.
///
/// Body bytes are released as soon as they cannot belong to a delimiter, so at most `boundary.count + 3`
/// bytes are held back between calls.
///
/// ```swift
/// var parser = MultipartFormParser(boundary: "xyz")
/// for event in try parser.feed(&buffer) {
///     switch event {
///     case .partHeaders(let headers): ...
///     case .body(let bytes): ...
///     case .partEnd: ...
///     }
/// }
/// try parser.finish()
/// ```
struct MultipartFormParser: Sendable {
    /// What the parser found, in body order.
    enum Event: Sendable, Equatable {
        /// A part starts; its body follows.
        case partHeaders(MultipartPartHeaders)
        /// Some of the current part's body.
        case body(ByteBuffer)
        /// The current part is complete.
        case partEnd
    }

    private enum State {
        /// Scanning for the delimiter; `inPart` tells whether scanned bytes are body or preamble.
        case scanning(inPart: Bool)
        /// After a delimiter: `--` closes, otherwise padding and CRLF.
        case afterDelimiter(dashes: Int)
        /// Transport padding after a delimiter; `crSeen` once its CR arrived.
        case padding(crSeen: Bool)
        case headers
        case epilogue
        case failed(MultipartFormError)
    }

    /// `CRLF--boundary`.
    private let delimiter: [UInt8]
    private let boundaryError: MultipartFormError?
    /// The largest header block accepted per part.
    let maxHeaderBytes: Int
    private var state: State
    /// How many leading bytes of `delimiter` the bytes seen so far end with (held back, not yet emitted).
    private var matched: Int
    private var headerBytes: [UInt8] = []

    /// Creates a parser for `boundary` (from ``boundary(fromContentType:)``).
    init(boundary: String, maxHeaderBytes: Int = 16 * 1024) {
        self.delimiter = Array("\r\n--\(boundary)".utf8)
        self.maxHeaderBytes = maxHeaderBytes
        // RFC 2046 boundaries are 1–70 characters without CR/LF; a CR inside would break the scanner.
        let bytes = Array(boundary.utf8)
        if bytes.isEmpty || bytes.count > 70 || bytes.contains(UInt8(ascii: "\r")) || bytes.contains(UInt8(ascii: "\n"))
        {
            self.boundaryError = .invalidBoundary
        } else {
            self.boundaryError = nil
        }
        self.state = .scanning(inPart: false)
        // The first delimiter may open the body without a preceding CRLF.
        self.matched = 2
    }

    /// The boundary parameter of a `multipart/form-data` content type, or `nil` if there is none.
    static func boundary(fromContentType contentType: String) -> String? {
        let parts = S3HeaderParameters.parse(contentType)
        guard parts.value.lowercased() == "multipart/form-data",
            let boundary = parts.parameters.first(where: { $0.name == "boundary" })?.value,
            !boundary.isEmpty
        else { return nil }
        return boundary
    }

    /// Consumes all of `buffer` and returns what it completed.
    /// - Throws: ``MultipartFormError``; the parser then stays failed.
    mutating func feed(_ buffer: inout ByteBuffer) throws -> [Event] {
        var events: [Event] = []
        do {
            if let error = self.boundaryError { throw error }
            while buffer.readableBytes > 0 {
                switch self.state {
                case .scanning(let inPart):
                    self.scan(&buffer, inPart: inPart, into: &events)
                case .afterDelimiter(let dashes):
                    let byte = buffer.readInteger(as: UInt8.self)!
                    if byte == UInt8(ascii: "-") {
                        if dashes == 1 {
                            self.state = .epilogue
                        } else {
                            self.state = .afterDelimiter(dashes: 1)
                        }
                    } else if dashes == 1 {
                        throw MultipartFormError.malformed("a delimiter is followed by a single '-'")
                    } else {
                        self.state = .padding(crSeen: false)
                        try self.pad(byte)
                    }
                case .padding:
                    try self.pad(buffer.readInteger(as: UInt8.self)!)
                case .headers:
                    if let headers = try self.readHeaders(&buffer) {
                        events.append(.partHeaders(headers))
                        self.state = .scanning(inPart: true)
                        self.matched = 0
                    }
                case .epilogue:
                    buffer.moveReaderIndex(to: buffer.writerIndex)
                case .failed(let error):
                    throw error
                }
            }
        } catch let error as MultipartFormError {
            self.state = .failed(error)
            throw error
        }
        return events
    }

    /// Ends the body.
    /// - Throws: ``MultipartFormError`` if the closing delimiter was not seen, or the earlier error.
    mutating func finish() throws {
        switch self.state {
        case .epilogue:
            return
        case .failed(let error):
            throw error
        default:
            if let error = self.boundaryError { throw error }
            self.state = .failed(.missingClosingDelimiter)
            throw MultipartFormError.missingClosingDelimiter
        }
    }

    // MARK: - Delimiter scanning

    /// Consumes bytes up to and including the next delimiter, or all of them.
    private mutating func scan(_ buffer: inout ByteBuffer, inPart: Bool, into events: inout [Event]) {
        let delimiter = self.delimiter
        // Continue a partial match held back from the previous call.
        if self.matched > 0 {
            let available = min(buffer.readableBytes, delimiter.count - self.matched)
            let agrees = buffer.withUnsafeReadableBytes { bytes in
                bytes[..<available].elementsEqual(delimiter[self.matched..<(self.matched + available)])
            }
            if agrees {
                buffer.moveReaderIndex(forwardBy: available)
                self.matched += available
                if self.matched == delimiter.count {
                    self.delimiterFound(inPart: inPart, into: &events)
                }
                return
            }
            // A delimiter starts with its only CR, so none can start inside the held bytes after the first.
            if inPart {
                events.append(.body(ByteBuffer(bytes: delimiter[..<self.matched])))
            }
            self.matched = 0
        }
        // Find the first CR from which the rest of the buffer agrees with the delimiter.
        let found: (offset: Int, length: Int)? = buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            while let cr = bytes[start...].firstIndex(of: UInt8(ascii: "\r")) {
                let length = min(delimiter.count, bytes.count - cr)
                if bytes[cr..<(cr + length)].elementsEqual(delimiter[..<length]) {
                    return (cr, length)
                }
                start = cr + 1
            }
            return nil
        }
        let bodyLength = found?.offset ?? buffer.readableBytes
        if bodyLength > 0 {
            let body = buffer.readSlice(length: bodyLength)!
            if inPart { events.append(.body(body)) }
        }
        if let found {
            buffer.moveReaderIndex(forwardBy: found.length)
            self.matched = found.length
            if found.length == delimiter.count {
                self.delimiterFound(inPart: inPart, into: &events)
            }
        }
    }

    private mutating func delimiterFound(inPart: Bool, into events: inout [Event]) {
        if inPart { events.append(.partEnd) }
        self.matched = 0
        self.state = .afterDelimiter(dashes: 0)
    }

    /// Transport padding (spaces and tabs) then CRLF.
    private mutating func pad(_ byte: UInt8) throws {
        guard case .padding(let crSeen) = self.state else { return }
        switch byte {
        case UInt8(ascii: " ") where !crSeen, UInt8(ascii: "\t") where !crSeen:
            break
        case UInt8(ascii: "\r") where !crSeen:
            self.state = .padding(crSeen: true)
        case UInt8(ascii: "\n") where crSeen:
            self.state = .headers
            self.headerBytes.removeAll(keepingCapacity: true)
        default:
            throw MultipartFormError.malformed("a delimiter is not followed by CRLF")
        }
    }

    // MARK: - Part headers

    /// Collects the header block; returns the parsed headers once the empty line arrived.
    private mutating func readHeaders(_ buffer: inout ByteBuffer) throws -> MultipartPartHeaders? {
        // Look for the end of the block across the bytes held and the new ones.
        let held = self.headerBytes
        let previous = held.count
        let endOffset: Int? = buffer.withUnsafeReadableBytes { bytes in
            for index in bytes.indices where bytes[index] == UInt8(ascii: "\n") {
                // An empty line: "\n\r\n" (or the block opening with "\r\n").
                let total = previous + index
                func byte(at position: Int) -> UInt8? {
                    guard position >= 0 else { return nil }
                    return position < previous ? held[position] : bytes[position - previous]
                }
                if byte(at: total - 1) == UInt8(ascii: "\r"),
                    total - 1 == 0 || byte(at: total - 2) == UInt8(ascii: "\n")
                {
                    return index + 1
                }
            }
            return nil
        }
        let take = endOffset ?? buffer.readableBytes
        guard previous + take <= self.maxHeaderBytes else {
            throw MultipartFormError.headersTooLarge(limit: self.maxHeaderBytes)
        }
        self.headerBytes.append(contentsOf: buffer.readBytes(length: take)!)
        guard endOffset != nil else { return nil }
        return try Self.parseHeaders(self.headerBytes)
    }

    private static func parseHeaders(_ block: [UInt8]) throws -> MultipartPartHeaders {
        var fields: [MultipartPartHeaders.Field] = []
        let text = String(decoding: block, as: UTF8.self)
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: true) {
            if let first = line.first, first == " " || first == "\t", !fields.isEmpty {
                // Obsolete line folding continues the previous header.
                fields[fields.count - 1].value += " " + line.trimmingSpaces()
                continue
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw MultipartFormError.malformed("a part header line has no ':'")
            }
            let name = line[..<colon].trimmingSpaces()
            guard !name.isEmpty else {
                throw MultipartFormError.malformed("a part header has no name")
            }
            fields.append(.init(name: name, value: line[line.index(after: colon)...].trimmingSpaces()))
        }
        guard let disposition = fields.first(where: { $0.name.lowercased() == "content-disposition" }) else {
            throw MultipartFormError.missingContentDisposition
        }
        let parsed = S3HeaderParameters.parse(disposition.value)
        guard parsed.value.lowercased() == "form-data",
            let name = parsed.parameters.first(where: { $0.name == "name" })?.value
        else {
            throw MultipartFormError.missingName
        }
        return MultipartPartHeaders(
            name: name,
            filename: parsed.parameters.first(where: { $0.name == "filename" })?.value,
            contentType: fields.first(where: { $0.name.lowercased() == "content-type" })?.value,
            fields: fields
        )
    }
}

/// A malformed `multipart/form-data` body; S3 answers `400 MalformedPOSTRequest`.
struct MultipartFormError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, for logs.
    let message: String

    /// The body ended before `--boundary--`.
    static let missingClosingDelimiter = Self(message: "the multipart body has no closing delimiter")
    /// A part lacks `Content-Disposition: form-data`.
    static let missingContentDisposition = Self(message: "a part has no Content-Disposition header")
    /// A part's `Content-Disposition` is not `form-data` or has no `name`.
    static let missingName = Self(message: "a part's Content-Disposition is not form-data with a name")
    /// The boundary is empty, longer than 70 characters or contains CR/LF.
    static let invalidBoundary = Self(message: "the multipart boundary is invalid")
    /// A part's header block is too large.
    static func headersTooLarge(limit: Int) -> Self {
        Self(message: "a part's headers are larger than \(limit) bytes")
    }
    /// Any other framing error.
    static func malformed(_ detail: String) -> Self { Self(message: detail) }

    /// The S3 error code.
    var code: String { "MalformedPOSTRequest" }
    /// The HTTP status S3 answers with.
    var httpStatus: Int { 400 }
    /// The message S3 sends for this code.
    var s3Message: String { "The body of your POST request is not well-formed multipart/form-data." }

    var description: String { "MultipartFormError: \(self.message)" }
}

/// Parses `value; name=token; name="quoted \"string\""` header values (parameter names lowercased).
enum S3HeaderParameters {
    /// One parameter; `name` is lowercased.
    struct Parameter: Hashable, Sendable {
        var name: String
        var value: String
    }

    /// Splits a header value into its leading value and its parameters.
    static func parse(_ header: String) -> (value: String, parameters: [Parameter]) {
        let scalars = Array(header.unicodeScalars)
        var index = 0
        func skipSpaces() {
            while index < scalars.count, scalars[index] == " " || scalars[index] == "\t" { index += 1 }
        }
        func readToken(stoppingAt stops: Set<Unicode.Scalar>) -> String {
            var token = String.UnicodeScalarView()
            while index < scalars.count, !stops.contains(scalars[index]) {
                token.append(scalars[index])
                index += 1
            }
            return String(token).trimmingSpaces()
        }
        let value = readToken(stoppingAt: [";"])
        var parameters: [Parameter] = []
        while index < scalars.count {
            index += 1  // the ';'
            skipSpaces()
            let name = readToken(stoppingAt: ["=", ";"]).lowercased()
            var parameterValue = ""
            if index < scalars.count, scalars[index] == "=" {
                index += 1
                skipSpaces()
                if index < scalars.count, scalars[index] == "\"" {
                    index += 1
                    var quoted = String.UnicodeScalarView()
                    while index < scalars.count, scalars[index] != "\"" {
                        if scalars[index] == "\\", index + 1 < scalars.count { index += 1 }
                        quoted.append(scalars[index])
                        index += 1
                    }
                    index += 1  // the closing quote
                    parameterValue = String(quoted)
                    _ = readToken(stoppingAt: [";"])  // ignore anything up to the next parameter
                } else {
                    parameterValue = readToken(stoppingAt: [";"])
                }
            }
            if !name.isEmpty {
                parameters.append(Parameter(name: name, value: parameterValue))
            }
        }
        return (value, parameters)
    }
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs.
    fileprivate func trimmingSpaces() -> String {
        let isSpace = { (c: Character) in c == " " || c == "\t" }
        guard let start = self.firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = self.lastIndex(where: { !isSpace($0) })!
        return String(self[start...end])
    }
}
