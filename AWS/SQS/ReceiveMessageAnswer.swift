import MartletJSON

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

    typealias Failure = JSONReader.Failure

    /// The messages of `{"Messages": [...]}` (none when the member is missing or null).
    static func messages(in bytes: UnsafeRawBufferPointer) -> [Message]? {
        var reader = JSONReader(bytes)
        var messages: [Message] = []
        do {
            try reader.object { (reader: inout JSONReader, name: String) throws(Failure) in
                guard name == "Messages" else { return try reader.skipValue() }
                if reader.takeNull() { return }
                try reader.array { (reader: inout JSONReader) throws(Failure) in messages.append(try message(&reader)) }
            }
        } catch {
            return nil
        }
        return reader.isAtEnd() ? messages : nil
    }

    private static func message(_ reader: inout JSONReader) throws(Failure) -> Message {
        var id: String?, handle: String?, body: String?
        var message = Message(messageID: "", receiptHandle: "", body: "")
        try reader.object { (reader: inout JSONReader, name: String) throws(Failure) in
            if reader.takeNull() { return }
            switch name {
            case "MessageId": id = try reader.string()
            case "ReceiptHandle": handle = try reader.string()
            case "Body": body = try reader.string()
            case "MD5OfBody": message.md5OfBody = try reader.string()
            case "MD5OfMessageAttributes": message.md5OfMessageAttributes = try reader.string()
            case "Attributes":
                var attributes: [String: String] = [:]
                try reader.object { (reader: inout JSONReader, name: String) throws(Failure) in attributes[name] = try reader.string() }
                message.attributes = attributes
            case "MessageAttributes":
                var attributes: [String: MessageAttributeValue] = [:]
                try reader.object { (reader: inout JSONReader, name: String) throws(Failure) in attributes[name] = try attributeValue(&reader) }
                message.messageAttributes = attributes
            default: try reader.skipValue()
            }
        }
        guard let id, let handle, let body else { throw Failure(description: "a message without MessageId, ReceiptHandle or Body") }
        message.messageID = id
        message.receiptHandle = handle
        message.body = body
        return message
    }

    private static func attributeValue(_ reader: inout JSONReader) throws(Failure) -> MessageAttributeValue {
        var dataType: String?, stringValue: String?, binaryValue: String?
        try reader.object { (reader: inout JSONReader, name: String) throws(Failure) in
            if reader.takeNull() { return }
            switch name {
            case "DataType": dataType = try reader.string()
            case "StringValue": stringValue = try reader.string()
            case "BinaryValue": binaryValue = try reader.string()
            default: try reader.skipValue()
            }
        }
        guard let dataType else { throw Failure(description: "a message attribute without DataType") }
        return MessageAttributeValue(dataType: dataType, stringValue: stringValue, binaryValue: binaryValue)
    }
}
