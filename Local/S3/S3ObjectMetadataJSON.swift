import Foundation
import MartletAWS
import MartletJSON

/// How an object's metadata is kept in SQLite: the JSON that `Codable` would write for
/// ``S3ObjectMetadata``, written and read byte by byte, since every PUT writes it and every GET and
/// HEAD reads it. Text this reader does not expect goes to `JSONDecoder`, so older rows stay readable.
extension S3ObjectMetadata {
    /// The stored JSON text.
    var storedJSON: String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        func field(_ name: StaticString, _ write: (inout [UInt8]) -> Void) {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            out.append(contentsOf: "\":".utf8)
            write(&out)
        }
        func text(_ name: StaticString, _ value: String?) {
            if let value { field(name) { JSONText.appendString(value, to: &$0) } }
        }
        text("contentType", contentType)
        text("contentEncoding", contentEncoding)
        text("contentDisposition", contentDisposition)
        text("contentLanguage", contentLanguage)
        text("cacheControl", cacheControl)
        text("expires", expires)
        field("user") { out in
            out.append(UInt8(ascii: "["))
            for (index, pair) in user.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(UInt8(ascii: "["))
                for (position, part) in pair.enumerated() {
                    if position > 0 { out.append(UInt8(ascii: ",")) }
                    JSONText.appendString(part, to: &out)
                }
                out.append(UInt8(ascii: "]"))
            }
            out.append(UInt8(ascii: "]"))
        }
        text("checksumAlgorithm", checksumAlgorithm)
        text("checksumValue", checksumValue)
        if let partsCount { field("partsCount") { $0.append(contentsOf: String(partsCount).utf8) } }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Reads stored JSON text; nil when it is not metadata at all.
    init?(storedJSON text: String) {
        var text = text
        if let parsed = text.withUTF8({ Self.parse(UnsafeRawBufferPointer($0)) }) {
            self = parsed
        } else if let decoded = try? JSONDecoder().decode(S3ObjectMetadata.self, from: Data(text.utf8)) {
            self = decoded
        } else {
            return nil
        }
    }

    /// The fast reader: an object of known fields with string, null, integer or string-array values.
    private static func parse(_ bytes: UnsafeRawBufferPointer) -> S3ObjectMetadata? {
        var position = 0
        func skipBlanks() {
            while position < bytes.count, bytes[position] == 0x20 || bytes[position] == 0x0A || bytes[position] == 0x0D || bytes[position] == 0x09 {
                position += 1
            }
        }
        func take(_ byte: UInt8) -> Bool {
            skipBlanks()
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }
        func string() -> String? {
            skipBlanks()
            return try? JSONText.readString(bytes, at: &position)
        }
        func optionalString() -> String?? {
            skipBlanks()
            if bytes.count - position >= 4, bytes[position] == UInt8(ascii: "n") {
                position += 4
                return .some(nil)
            }
            return string().map { .some($0) }
        }
        var metadata = S3ObjectMetadata()
        guard take(UInt8(ascii: "{")) else { return nil }
        if take(UInt8(ascii: "}")) { return position == bytes.count ? metadata : nil }
        repeat {
            guard let name = string(), take(UInt8(ascii: ":")) else { return nil }
            switch name {
            case "user":
                guard take(UInt8(ascii: "[")) else { return nil }
                if !take(UInt8(ascii: "]")) {
                    repeat {
                        guard take(UInt8(ascii: "[")) else { return nil }
                        var pair: [String] = []
                        if !take(UInt8(ascii: "]")) {
                            repeat {
                                guard let part = string() else { return nil }
                                pair.append(part)
                            } while take(UInt8(ascii: ","))
                            guard take(UInt8(ascii: "]")) else { return nil }
                        }
                        metadata.user.append(pair)
                    } while take(UInt8(ascii: ","))
                    guard take(UInt8(ascii: "]")) else { return nil }
                }
            case "partsCount":
                skipBlanks()
                let start = position
                while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
                guard let count = Int(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)) else { return nil }
                metadata.partsCount = count
            default:
                guard let value = optionalString() else { return nil }
                switch name {
                case "contentType": metadata.contentType = value
                case "contentEncoding": metadata.contentEncoding = value
                case "contentDisposition": metadata.contentDisposition = value
                case "contentLanguage": metadata.contentLanguage = value
                case "cacheControl": metadata.cacheControl = value
                case "expires": metadata.expires = value
                case "checksumAlgorithm": metadata.checksumAlgorithm = value
                case "checksumValue": metadata.checksumValue = value
                default: return nil
                }
            }
        } while take(UInt8(ascii: ","))
        guard take(UInt8(ascii: "}")) else { return nil }
        skipBlanks()
        return position == bytes.count ? metadata : nil
    }
}
