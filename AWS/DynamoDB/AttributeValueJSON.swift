import MartletJSON

/// DynamoDB's JSON for items (`{"name": {"S": "…"}, "tags": {"SS": ["a", "b"]}}`), written and read
/// byte by byte: many times faster than Codable through JSONEncoder/JSONDecoder, which matters for
/// items that hold large sets or lists and are read and written on every update.
///
/// `decodeItem` reads any JSON encoding of an item (whitespace, escaped slashes and `\u` escapes
/// included), so it reads what `JSONEncoder` wrote as well as what `encode` writes.
public enum AttributeValueJSON {
    /// A document that is not an item in DynamoDB's JSON.
    public struct DecodingError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The item as compact JSON (UTF-8).
    public static func encode(_ item: [String: AttributeValue]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        writeItem(item, to: &out)
        return out
    }

    /// Reads an item.
    public static func decodeItem(_ bytes: some Collection<UInt8>) throws(DecodingError) -> [String: AttributeValue] {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(DecodingError) in try parseItem(UnsafeRawBufferPointer(buffer)) }
        }
        if let result { return try result.get() }
        return try decodeItem(Array(bytes))
    }

    private static func parseItem(_ bytes: UnsafeRawBufferPointer) throws(DecodingError) -> [String: AttributeValue] {
        var reader = Reader(bytes: bytes)
        let item = try reader.item()
        reader.skipWhitespace()
        guard reader.position == reader.bytes.count else { throw reader.error("unexpected bytes after the item") }
        return item
    }

    // MARK: Writing

    private static func writeItem(_ item: [String: AttributeValue], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        var first = true
        for (name, value) in item {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            writeString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            writeValue(value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    private static func writeValue(_ value: AttributeValue, to out: inout [UInt8]) {
        out.append(contentsOf: #"{""#.utf8)
        out.append(contentsOf: value.typeName.utf8)
        out.append(contentsOf: #"":"#.utf8)
        switch value {
        case .s(let text), .n(let text): writeString(text, to: &out)
        case .b(let bytes): writeString(Base64.encode(bytes), to: &out)
        case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "true".utf8)
        case .m(let map): writeItem(map, to: &out)
        case .l(let list): writeArray(list, to: &out) { writeValue($0, to: &$1) }
        case .ss(let texts), .ns(let texts): writeArray(texts, to: &out) { writeString($0, to: &$1) }
        case .bs(let blobs): writeArray(blobs, to: &out) { writeString(Base64.encode($0), to: &$1) }
        }
        out.append(UInt8(ascii: "}"))
    }

    private static func writeArray<Element>(_ elements: [Element], to out: inout [UInt8], _ write: (Element, inout [UInt8]) -> Void) {
        out.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            write(element, &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    private static func writeString(_ text: String, to out: inout [UInt8]) { JSONText.appendString(text, to: &out) }

    // MARK: Requests and responses

    /// A member of a data operation's request or response object (PutItem, GetItem, UpdateItem,
    /// DeleteItem), as ``decodeMembers(_:)`` reads it and ``encodeMembers(_:)`` writes it.
    public enum Member: Sendable, Equatable {
        case string(String)
        case bool(Bool)
        /// A JSON number, as written.
        case number(String)
        /// An item, a key, or `ExpressionAttributeValues`.
        case item([String: AttributeValue])
        case items([[String: AttributeValue]])
        /// `ExpressionAttributeNames`.
        case strings([String: String])
        /// `TransactItems`: for each entry, its action (`Put`, `Update`, …) and that action's members.
        case transactItems([[String: [String: Member]]])
    }

    /// Members whose objects are items (or maps of attribute values).
    static let itemMembers: Set<String> = ["Item", "Key", "Attributes", "ExpressionAttributeValues", "ExclusiveStartKey", "LastEvaluatedKey"]

    /// Reads a request or response object whose members are scalars, items (`Item`, `Key`,
    /// `Attributes`, `ExpressionAttributeValues`, …), `Items` or `ExpressionAttributeNames`; null
    /// members are left out. Nil when the object holds anything else (nested structures such as
    /// `ConsumedCapacity`): the caller then reads it with Codable.
    public static func decodeMembers(_ bytes: some Collection<UInt8>) -> [String: Member]? {
        let result = bytes.withContiguousStorageIfAvailable { buffer -> [String: Member]? in
            var reader = Reader(bytes: UnsafeRawBufferPointer(buffer))
            guard let members = try? reader.members() else { return nil }
            reader.skipWhitespace()
            return reader.position == reader.bytes.count ? members : nil
        }
        if let result { return result }
        return decodeMembers(Array(bytes))
    }

    /// Writes a request or response object, members in the given order.
    public static func encodeMembers(_ members: [(String, Member)]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        writeMembers(members, to: &out)
        return out
    }

    private static func writeMembers(_ members: some Collection<(String, Member)>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (index, (name, member)) in members.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            writeString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            switch member {
            case .string(let text): writeString(text, to: &out)
            case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
            case .number(let text): out.append(contentsOf: text.utf8)
            case .item(let item): writeItem(item, to: &out)
            case .items(let items): writeArray(items, to: &out) { writeItem($0, to: &$1) }
            case .strings(let map):
                out.append(UInt8(ascii: "{"))
                for (position, (key, value)) in map.enumerated() {
                    if position > 0 { out.append(UInt8(ascii: ",")) }
                    writeString(key, to: &out)
                    out.append(UInt8(ascii: ":"))
                    writeString(value, to: &out)
                }
                out.append(UInt8(ascii: "}"))
            case .transactItems(let entries):
                writeArray(entries, to: &out) { entry, out in
                    out.append(UInt8(ascii: "{"))
                    for (position, (action, members)) in entry.enumerated() {
                        if position > 0 { out.append(UInt8(ascii: ",")) }
                        writeString(action, to: &out)
                        out.append(UInt8(ascii: ":"))
                        writeMembers(members.lazy.map { ($0.key, $0.value) }, to: &out)
                    }
                    out.append(UInt8(ascii: "}"))
                }
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    // MARK: Reading

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        func error(_ message: String) -> DecodingError { DecodingError(description: "\(message) at byte \(position)") }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[position]) { position += 1 }
        }

        /// The next byte that is not whitespace, consumed.
        mutating func expect(_ byte: UInt8) throws(DecodingError) {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == byte else { throw error("expected '\(Character(Unicode.Scalar(byte)))'") }
            position += 1
        }

        /// Consumes `byte` if it comes next.
        mutating func take(_ byte: UInt8) -> Bool {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        mutating func item() throws(DecodingError) -> [String: AttributeValue] {
            try expect(UInt8(ascii: "{"))
            var item: [String: AttributeValue] = [:]
            if take(UInt8(ascii: "}")) { return item }
            repeat {
                let name = try string()
                try expect(UInt8(ascii: ":"))
                item[name] = try value()
            } while take(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"))
            return item
        }

        mutating func value() throws(DecodingError) -> AttributeValue {
            try expect(UInt8(ascii: "{"))
            let type = try string()
            try expect(UInt8(ascii: ":"))
            let value: AttributeValue
            switch type {
            case "S": value = .s(try string())
            case "N": value = .n(try string())
            case "B": value = .b(try base64())
            case "BOOL": value = .bool(try boolean())
            case "NULL":
                _ = try boolean()
                value = .null
            case "M": value = .m(try item())
            case "L": value = .l(try array { (reader: inout Reader) throws(DecodingError) in try reader.value() })
            case "SS": value = .ss(try array { (reader: inout Reader) throws(DecodingError) in try reader.string() })
            case "NS": value = .ns(try array { (reader: inout Reader) throws(DecodingError) in try reader.string() })
            case "BS": value = .bs(try array { (reader: inout Reader) throws(DecodingError) in try reader.base64() })
            default: throw error("unknown attribute type \"\(type)\"")
            }
            try expect(UInt8(ascii: "}"))
            return value
        }

        mutating func array<Element>(_ element: (inout Reader) throws(DecodingError) -> Element) throws(DecodingError) -> [Element] {
            try expect(UInt8(ascii: "["))
            var elements: [Element] = []
            if take(UInt8(ascii: "]")) { return elements }
            repeat { elements.append(try element(&self)) } while take(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"))
            return elements
        }

        mutating func boolean() throws(DecodingError) -> Bool {
            skipWhitespace()
            for (word, meaning) in [("true", true), ("false", false)] {
                let utf8 = Array(word.utf8)
                if position + utf8.count <= bytes.count, zip(bytes[position..<(position + utf8.count)], utf8).allSatisfy({ $0 == $1 }) {
                    position += utf8.count
                    return meaning
                }
            }
            throw error("expected true or false")
        }

        mutating func base64() throws(DecodingError) -> [UInt8] {
            let text = try string()
            guard let bytes = Base64.decode(text) else { throw error("invalid base64") }
            return bytes
        }

        /// A request or response object (see `decodeMembers`).
        mutating func members() throws(DecodingError) -> [String: Member] {
            try expect(UInt8(ascii: "{"))
            var members: [String: Member] = [:]
            if take(UInt8(ascii: "}")) { return members }
            repeat {
                let name = try string()
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end") }
                switch bytes[position] {
                case UInt8(ascii: "\""): members[name] = .string(try string())
                case UInt8(ascii: "t"), UInt8(ascii: "f"): members[name] = .bool(try boolean())
                case UInt8(ascii: "n"):
                    guard position + 4 <= bytes.count, bytes[position + 1] == UInt8(ascii: "u") else { throw error("expected null") }
                    position += 4
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    let start = position
                    while position < bytes.count, Self.isNumberByte(bytes[position]) { position += 1 }
                    members[name] = .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self))
                case UInt8(ascii: "{") where AttributeValueJSON.itemMembers.contains(name): members[name] = .item(try item())
                case UInt8(ascii: "{") where name == "ExpressionAttributeNames":
                    try expect(UInt8(ascii: "{"))
                    var map: [String: String] = [:]
                    if !take(UInt8(ascii: "}")) {
                        repeat {
                            let key = try string()
                            try expect(UInt8(ascii: ":"))
                            map[key] = try string()
                        } while take(UInt8(ascii: ","))
                        try expect(UInt8(ascii: "}"))
                    }
                    members[name] = .strings(map)
                case UInt8(ascii: "[") where name == "Items":
                    members[name] = .items(try array { (reader: inout Reader) throws(DecodingError) in try reader.item() })
                case UInt8(ascii: "[") where name == "TransactItems":
                    members[name] = .transactItems(try array { (reader: inout Reader) throws(DecodingError) in try reader.transactItem() })
                default: throw error("a member this reader does not know: \(name)")
                }
            } while take(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"))
            return members
        }

        /// One entry of `TransactItems`: `{"Put": {…}}` (an entry naming more actions is read as it is).
        mutating func transactItem() throws(DecodingError) -> [String: [String: Member]] {
            try expect(UInt8(ascii: "{"))
            var entry: [String: [String: Member]] = [:]
            if take(UInt8(ascii: "}")) { return entry }
            repeat {
                let action = try string()
                try expect(UInt8(ascii: ":"))
                entry[action] = try members()
            } while take(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"))
            return entry
        }

        static func isNumberByte(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
        }

        mutating func string() throws(DecodingError) -> String {
            skipWhitespace()
            do {
                return try JSONText.readString(bytes, at: &position)
            } catch {
                throw DecodingError(description: error.description)
            }
        }
    }
}
