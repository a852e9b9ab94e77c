import MartletJSON

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Encodes `Encodable` values as DynamoDB items: strings become `S`, numbers `N`, booleans
/// `BOOL`, nil `NULL`, arrays `L`, nested types `M`.
///
/// ```swift
/// struct Job: Codable { var pk: String; var status: String; var progress: Int }
/// let item = try DynamoDBEncoder().encode(Job(pk: "job#1", status: "QUEUED", progress: 0))
/// ```
///
/// The value goes through `JSONEncoder`, so its strategies apply (`Date` as seconds by default);
/// `Data` becomes a base64 `S`. For `B`, sets and other exact types, build ``AttributeValue``s directly.
public struct DynamoDBEncoder: Sendable {
    public var dateEncodingStrategy: JSONEncoder.DateEncodingStrategy = .secondsSince1970

    public init() {}

    /// Encodes a value whose top level is an object into an item.
    public func encode(_ value: some Encodable) throws -> [String: AttributeValue] {
        guard case .m(let item) = try encodeValue(value) else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "a DynamoDB item must encode as an object"))
        }
        return item
    }

    /// Encodes any value into one attribute value.
    public func encodeValue(_ value: some Encodable) throws -> AttributeValue {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = dateEncodingStrategy
        var parser = RawJSONParser(bytes: Array(try encoder.encode(value)))
        return try parser.parseDocument()
    }
}

/// Decodes DynamoDB items into `Decodable` values (the inverse of ``DynamoDBEncoder``).
public struct DynamoDBDecoder: Sendable {
    public var dateDecodingStrategy: JSONDecoder.DateDecodingStrategy = .secondsSince1970

    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from item: [String: AttributeValue]) throws -> T {
        try decode(type, fromValue: .m(item))
    }

    public func decode<T: Decodable>(_ type: T.Type, fromValue value: AttributeValue) throws -> T {
        var json = ""
        RawJSONWriter.write(value, to: &json)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = dateDecodingStrategy
        return try decoder.decode(type, from: Data(json.utf8))
    }
}

/// Writes an attribute value as plain JSON, numbers as their exact text.
enum RawJSONWriter {
    static func write(_ value: AttributeValue, to out: inout String) {
        switch value {
        case .s(let text): writeString(text, to: &out)
        case .n(let number): out += number
        case .b(let bytes): writeString(Base64.encode(bytes), to: &out)
        case .bool(let flag): out += flag ? "true" : "false"
        case .null: out += "null"
        case .m(let members):
            out += "{"
            for (index, (key, member)) in members.enumerated() {
                if index > 0 { out += "," }
                writeString(key, to: &out)
                out += ":"
                write(member, to: &out)
            }
            out += "}"
        case .l(let items): writeArray(items, to: &out)
        case .ss(let strings): writeArray(strings.map(AttributeValue.s), to: &out)
        case .ns(let numbers): writeArray(numbers.map(AttributeValue.n), to: &out)
        case .bs(let blobs): writeArray(blobs.map(AttributeValue.b), to: &out)
        }
    }

    private static func writeArray(_ items: [AttributeValue], to out: inout String) {
        out += "["
        for (index, item) in items.enumerated() {
            if index > 0 { out += "," }
            write(item, to: &out)
        }
        out += "]"
    }

    private static func writeString(_ text: String, to out: inout String) {
        var bytes: [UInt8] = []
        JSONText.appendString(text, to: &bytes)
        out += String(decoding: bytes, as: UTF8.self)
    }
}

/// A JSON parser that turns JSON into attribute values, keeping number literals as text.
struct RawJSONParser {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws -> AttributeValue {
        let value = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw error("trailing characters") }
        return value
    }

    private mutating func parseValue() throws -> AttributeValue {
        skipWhitespace()
        guard index < bytes.count else { throw error("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var members: [String: AttributeValue] = [:]
            skipWhitespace()
            if peek(UInt8(ascii: "}")) { index += 1; return .m(members) }
            while true {
                skipWhitespace()
                let key = try parseString()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                members[key] = try parseValue()
                skipWhitespace()
                if peek(UInt8(ascii: ",")) { index += 1; continue }
                try expect(UInt8(ascii: "}"))
                return .m(members)
            }
        case UInt8(ascii: "["):
            index += 1
            var items: [AttributeValue] = []
            skipWhitespace()
            if peek(UInt8(ascii: "]")) { index += 1; return .l(items) }
            while true {
                items.append(try parseValue())
                skipWhitespace()
                if peek(UInt8(ascii: ",")) { index += 1; continue }
                try expect(UInt8(ascii: "]"))
                return .l(items)
            }
        case UInt8(ascii: "\""): return .s(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            let start = index
            while index < bytes.count, "+-0123456789.eE".utf8.contains(bytes[index]) { index += 1 }
            guard index > start else { throw error("unexpected character") }
            return .n(String(decoding: bytes[start..<index], as: UTF8.self))
        }
    }

    private mutating func parseString() throws -> String {
        var position = index
        defer { index = position }
        do {
            return try bytes.withUnsafeBytes { raw in try JSONText.readString(raw, at: &position) }
        } catch {
            throw self.error("\(error)")
        }
    }

    private mutating func literal(_ word: String) throws {
        let expected = Array(word.utf8)
        guard index + expected.count <= bytes.count, Array(bytes[index..<index + expected.count]) == expected else { throw error("bad literal") }
        index += expected.count
    }

    private func peek(_ byte: UInt8) -> Bool { index < bytes.count && bytes[index] == byte }

    private mutating func expect(_ byte: UInt8) throws {
        guard peek(byte) else { throw error("expected \(Character(Unicode.Scalar(byte)))") }
        index += 1
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
    }

    private func error(_ message: String) -> any Error {
        DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "JSON at byte \(index): \(message)"))
    }
}
