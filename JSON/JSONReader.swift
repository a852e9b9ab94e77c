/// A pull reader over JSON text, for codecs written by hand where JSONDecoder costs too much (an
/// event on every invocation, an answer on every AWS call). The caller walks the structure it
/// expects; anything else fails, and the caller then falls back to Codable, which reports the error.
///
/// ```swift
/// var reader = JSONReader(bytes)
/// try reader.object { reader, name in
///     if name == "id" { id = try reader.string() } else { try reader.skipValue() }
/// }
/// ```
public struct JSONReader {
    /// The text is not what the caller expected (or not JSON).
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public let bytes: UnsafeRawBufferPointer
    /// The offset of the next byte to read.
    public private(set) var position = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func failure(_ expected: String) -> Failure { Failure(description: "expected \(expected) at byte \(position)") }

    /// Reads an object: `member` is called with each name and must read (or skip) its value.
    public mutating func object(_ member: (inout JSONReader, String) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "{"))
        if take(UInt8(ascii: "}")) { return }
        repeat {
            let name = try string()
            try expect(UInt8(ascii: ":"))
            try member(&self, name)
        } while take(UInt8(ascii: ","))
        try expect(UInt8(ascii: "}"))
    }

    /// Reads an array: `element` is called for each element and must read (or skip) it.
    public mutating func array(_ element: (inout JSONReader) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "["))
        if take(UInt8(ascii: "]")) { return }
        repeat { try element(&self) } while take(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
    }

    public mutating func string() throws(Failure) -> String {
        skipWhitespace()
        do {
            return try JSONText.readString(bytes, at: &position)
        } catch {
            throw failure("a string")
        }
    }

    /// A whole number (no fraction, no exponent) that fits in 64 bits.
    public mutating func integer() throws(Failure) -> Int64 {
        let text = try scalar()
        guard let value = Int64(String(decoding: text, as: UTF8.self)) else { throw failure("an integer") }
        return value
    }

    /// Any number, as `Double` reads its decimal text.
    public mutating func number() throws(Failure) -> Double {
        let text = try scalar()
        guard let first = text.first, first == UInt8(ascii: "-") || (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")),
            let value = Double(String(decoding: text, as: UTF8.self))
        else { throw failure("a number") }
        return value
    }

    public mutating func bool() throws(Failure) -> Bool {
        skipWhitespace()
        if take(literal: "true") { return true }
        if take(literal: "false") { return false }
        throw failure("true or false")
    }

    /// Consumes `null` if it comes next.
    public mutating func takeNull() -> Bool {
        skipWhitespace()
        return take(literal: "null")
    }

    /// The next byte that is not whitespace, unread (nil at the end).
    public mutating func peek() -> UInt8? {
        skipWhitespace()
        return position < bytes.count ? bytes[position] : nil
    }

    /// A string, or nil for null.
    public mutating func optionalString() throws(Failure) -> String? { takeNull() ? nil : try string() }

    /// `{"name": "value", …}`; nil for null.
    public mutating func stringMap() throws(Failure) -> [String: String]? {
        if takeNull() { return nil }
        var map: [String: String] = [:]
        try object { (reader: inout JSONReader, name: String) throws(Failure) in map[name] = try reader.string() }
        return map
    }

    /// `{"name": ["value", …], …}`; nil for null.
    public mutating func stringListMap() throws(Failure) -> [String: [String]]? {
        if takeNull() { return nil }
        var map: [String: [String]] = [:]
        try object { (reader: inout JSONReader, name: String) throws(Failure) in
            var values: [String] = []
            try reader.array { (reader: inout JSONReader) throws(Failure) in values.append(try reader.string()) }
            map[name] = values
        }
        return map
    }

    /// Any value, unread.
    public mutating func skipValue() throws(Failure) {
        switch peek() {
        case UInt8(ascii: "\"")?: _ = try string()
        case UInt8(ascii: "{")?: try object { (reader: inout JSONReader, _: String) throws(Failure) in try reader.skipValue() }
        case UInt8(ascii: "[")?: try array { (reader: inout JSONReader) throws(Failure) in try reader.skipValue() }
        case nil: throw failure("a value")
        default: _ = try scalar()
        }
    }

    /// Whether only whitespace is left.
    public mutating func isAtEnd() -> Bool { peek() == nil }

    // MARK: Bytes

    /// The text of a number, `true`, `false` or `null`.
    private mutating func scalar() throws(Failure) -> UnsafeRawBufferPointer.SubSequence {
        skipWhitespace()
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") || Self.isWhitespace(byte) { break }
            position += 1
        }
        guard position > start else { throw failure("a value") }
        return bytes[start..<position]
    }

    private mutating func take(literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { return false }
        for index in 0..<count where bytes[position + index] != literal.utf8Start[index] { return false }
        // The literal must end there (`nullx` is not `null`).
        if position + count < bytes.count {
            let next = bytes[position + count]
            guard next == UInt8(ascii: ",") || next == UInt8(ascii: "}") || next == UInt8(ascii: "]") || Self.isWhitespace(next) else { return false }
        }
        position += count
        return true
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

    private mutating func skipWhitespace() {
        while position < bytes.count, Self.isWhitespace(bytes[position]) { position += 1 }
    }

    private mutating func expect(_ byte: UInt8) throws(Failure) {
        guard take(byte) else { throw failure("'\(Character(Unicode.Scalar(byte)))'") }
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }
}
