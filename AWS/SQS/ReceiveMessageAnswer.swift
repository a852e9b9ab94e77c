/// ReceiveMessage's answer, read byte by byte: a worker reads one for every job it takes, and
/// JSONDecoder took 3 % of a no-op worker's time. Members it does not know are skipped; an answer
/// it cannot read at all gives nil, and the caller reads it with Codable (and reports the error).
struct ReceiveMessageAnswer {
    struct Message: Equatable {
        var messageID: String
        var receiptHandle: String
        var body: String
        var md5OfBody: String?
        var attributes: [String: String]?
        var messageAttributes: [String: MessageAttributeValue]?
        var md5OfMessageAttributes: String?
    }

    /// The messages of `{"Messages": [...]}` (none when the member is missing or null).
    static func messages(in bytes: UnsafeRawBufferPointer) -> [Message]? {
        var reader = Reader(bytes: bytes)
        guard let messages = try? reader.answer() else { return nil }
        reader.skipWhitespace()
        return reader.position == bytes.count ? messages : nil
    }

    private struct Failure: Error {}

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        mutating func answer() throws(Failure) -> [Message] {
            var messages: [Message] = []
            try object { (reader: inout Reader, name: String) throws(Failure) in
                if name == "Messages" {
                    if reader.takeNull() { return }
                    try reader.array { (reader: inout Reader) throws(Failure) in messages.append(try reader.message()) }
                } else {
                    try reader.skipValue()
                }
            }
            return messages
        }

        mutating func message() throws(Failure) -> Message {
            var id: String?, handle: String?, body: String?
            var message = Message(messageID: "", receiptHandle: "", body: "")
            try object { (reader: inout Reader, name: String) throws(Failure) in
                if reader.takeNull() { return }
                switch name {
                case "MessageId": id = try reader.string()
                case "ReceiptHandle": handle = try reader.string()
                case "Body": body = try reader.string()
                case "MD5OfBody": message.md5OfBody = try reader.string()
                case "MD5OfMessageAttributes": message.md5OfMessageAttributes = try reader.string()
                case "Attributes":
                    var attributes: [String: String] = [:]
                    try reader.object { (reader: inout Reader, name: String) throws(Failure) in attributes[name] = try reader.string() }
                    message.attributes = attributes
                case "MessageAttributes":
                    var attributes: [String: MessageAttributeValue] = [:]
                    try reader.object { (reader: inout Reader, name: String) throws(Failure) in attributes[name] = try reader.attributeValue() }
                    message.messageAttributes = attributes
                default: try reader.skipValue()
                }
            }
            guard let id, let handle, let body else { throw Failure() }
            message.messageID = id
            message.receiptHandle = handle
            message.body = body
            return message
        }

        mutating func attributeValue() throws(Failure) -> MessageAttributeValue {
            var dataType: String?, stringValue: String?, binaryValue: String?
            try object { (reader: inout Reader, name: String) throws(Failure) in
                if reader.takeNull() { return }
                switch name {
                case "DataType": dataType = try reader.string()
                case "StringValue": stringValue = try reader.string()
                case "BinaryValue": binaryValue = try reader.string()
                default: try reader.skipValue()
                }
            }
            guard let dataType else { throw Failure() }
            return MessageAttributeValue(dataType: dataType, stringValue: stringValue, binaryValue: binaryValue)
        }

        // MARK: JSON structure

        mutating func object(_ member: (inout Reader, String) throws(Failure) -> Void) throws(Failure) {
            try expect(UInt8(ascii: "{"))
            if take(UInt8(ascii: "}")) { return }
            repeat {
                skipWhitespace()
                let name = try string()
                try expect(UInt8(ascii: ":"))
                try member(&self, name)
            } while take(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"))
        }

        mutating func array(_ element: (inout Reader) throws(Failure) -> Void) throws(Failure) {
            try expect(UInt8(ascii: "["))
            if take(UInt8(ascii: "]")) { return }
            repeat { try element(&self) } while take(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"))
        }

        mutating func string() throws(Failure) -> String {
            skipWhitespace()
            do {
                return try JSONText.readString(bytes, at: &position)
            } catch {
                throw Failure()
            }
        }

        /// Any value, unread: a member this reader does not need.
        mutating func skipValue() throws(Failure) {
            skipWhitespace()
            guard position < bytes.count else { throw Failure() }
            switch bytes[position] {
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "{"): try object { (reader: inout Reader, _: String) throws(Failure) in try reader.skipValue() }
            case UInt8(ascii: "["): try array { (reader: inout Reader) throws(Failure) in try reader.skipValue() }
            default:
                // A number, true, false or null.
                let start = position
                while position < bytes.count, !Self.endsScalar(bytes[position]) { position += 1 }
                guard position > start else { throw Failure() }
            }
        }

        static func endsScalar(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") || byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
        }

        mutating func takeNull() -> Bool {
            skipWhitespace()
            guard position + 4 <= bytes.count, bytes[position] == UInt8(ascii: "n"), bytes[position + 1] == UInt8(ascii: "u"),
                bytes[position + 2] == UInt8(ascii: "l"), bytes[position + 3] == UInt8(ascii: "l")
            else { return false }
            position += 4
            return true
        }

        mutating func skipWhitespace() {
            while position < bytes.count, bytes[position] == 0x20 || bytes[position] == 0x0A || bytes[position] == 0x0D || bytes[position] == 0x09 {
                position += 1
            }
        }

        mutating func expect(_ byte: UInt8) throws(Failure) {
            guard take(byte) else { throw Failure() }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }
    }
}
