import MartletJSON
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A message attribute value: `String`, `Number` (as text) or `Binary`, optionally with a custom type suffix.
public struct MessageAttributeValue: Codable, Sendable, Hashable {
    public var dataType: String
    public var stringValue: String?
    /// Base64 on the wire.
    public var binaryValue: String?

    public static func string(_ value: String) -> Self { Self(dataType: "String", stringValue: value, binaryValue: nil) }
    public static func number(_ value: String) -> Self { Self(dataType: "Number", stringValue: value, binaryValue: nil) }
    public static func binary(_ bytes: [UInt8]) -> Self { Self(dataType: "Binary", stringValue: nil, binaryValue: Base64.encode(bytes)) }

    public init(dataType: String, stringValue: String?, binaryValue: String?) {
        self.dataType = dataType
        self.stringValue = stringValue
        self.binaryValue = binaryValue
    }

    enum CodingKeys: String, CodingKey {
        case dataType = "DataType", stringValue = "StringValue", binaryValue = "BinaryValue"
    }
}

/// One message to send in a batch.
public struct SQSBatchEntry: Sendable, Hashable {
    /// Unique within the batch: up to 80 of `A-Z a-z 0-9 _ -`.
    public var id: String
    public var body: String
    public var delaySeconds: Int?
    public var attributes: [String: MessageAttributeValue]
    public var groupID: String?
    public var deduplicationID: String?

    public init(id: String, body: String, delaySeconds: Int? = nil, attributes: [String: MessageAttributeValue] = [:], groupID: String? = nil, deduplicationID: String? = nil) {
        self.id = id
        self.body = body
        self.delaySeconds = delaySeconds
        self.attributes = attributes
        self.groupID = groupID
        self.deduplicationID = deduplicationID
    }
}

/// A received message.
public struct SQSMessage: Sendable, Hashable {
    public var messageID: String
    public var receiptHandle: String
    public var body: String
    /// System attributes (`ApproximateReceiveCount`, `SentTimestamp`, …).
    public var attributes: [String: String]
    public var messageAttributes: [String: MessageAttributeValue]

    /// The X-Ray trace header it was sent with (`AWSTraceHeader`), if any.
    public var traceHeader: String? { attributes["AWSTraceHeader"] }

    /// How many times the message has been received, this time included.
    public var receiveCount: Int? { attributes["ApproximateReceiveCount"].flatMap { Int($0) } }
}

/// The outcome of a batch send: what was accepted and what was refused, by entry id.
public struct SQSBatchResult: Sendable, Hashable {
    public struct Accepted: Sendable, Hashable {
        public var id: String
        public var messageID: String
    }
    public struct Refused: Sendable, Hashable {
        public var id: String
        public var code: String
        public var message: String?
        public var senderFault: Bool
    }
    public var successful: [Accepted]
    public var failed: [Refused]
}

/// Amazon SQS over its JSON protocol.
///
/// ```swift
/// let sqs = SQSClient(aws)
/// let queue = try await sqs.queueURL(named: "jobs")
/// try await sqs.sendMessage(queueURL: queue, body: #"{"jobId":"1"}"#)
/// for message in try await sqs.receiveMessages(queueURL: queue, waitTime: 20) { … }
/// ```
public struct SQSClient: Sendable {
    /// The largest message (body and attributes) SQS takes: 1 MiB.
    public static let maxMessageSize = 1_048_576
    public let aws: AWSClient

    public init(_ aws: AWSClient) { self.aws = aws }

    /// Sends a message; returns its id. The body's MD5 in the answer is checked.
    @discardableResult
    public func sendMessage(
        queueURL: String, body: String, delaySeconds: Int? = nil, attributes: [String: MessageAttributeValue] = [:],
        groupID: String? = nil, deduplicationID: String? = nil, traceHeader: String? = nil
    ) async throws -> String {
        try Self.validate(body: body, attributes: attributes, delaySeconds: delaySeconds)
        var input = JSONObjectWriter()
        input.string("QueueUrl", queueURL)
        input.string("MessageBody", body)
        input.integer("DelaySeconds", delaySeconds)
        if !attributes.isEmpty { input.object("MessageAttributes") { Self.write(attributes, to: &$0) } }
        input.string("MessageGroupId", groupID)
        input.string("MessageDeduplicationId", deduplicationID)
        // `AWSTraceHeader`: the X-Ray trace the message continues.
        if let traceHeader { input.object("MessageSystemAttributes") { Self.write(["AWSTraceHeader": .string(traceHeader)], to: &$0) } }
        let answer = try await call("SendMessage", input)
        guard let members = AttributeValueJSON.decodeMembers(answer.readableBytesView), case .string(let messageID)? = members["MessageId"] else {
            throw AWSClientError.invalidResponse("SendMessage: no MessageId in the answer")
        }
        if case .string(let md5)? = members["MD5OfMessageBody"], md5 != Self.md5(body) {
            throw AWSClientError.invalidResponse("SendMessage: MD5OfMessageBody \(md5) does not match the body sent")
        }
        return messageID
    }

    /// Sends up to 10 messages at once.
    public func sendMessageBatch(queueURL: String, entries: [SQSBatchEntry]) async throws -> SQSBatchResult {
        guard (1...10).contains(entries.count) else { throw AWSClientError.invalidArgument("a batch has 1 to 10 entries, not \(entries.count)") }
        guard Set(entries.map(\.id)).count == entries.count else { throw AWSClientError.invalidArgument("batch entry ids must be distinct") }
        var total = 0
        for entry in entries {
            guard !entry.id.isEmpty, entry.id.count <= 80,
                entry.id.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") })
            else { throw AWSClientError.invalidArgument("batch entry id \"\(entry.id)\" must be 1-80 of A-Z a-z 0-9 _ -") }
            try Self.validate(body: entry.body, attributes: entry.attributes, delaySeconds: entry.delaySeconds)
            total += Self.size(body: entry.body, attributes: entry.attributes)
        }
        guard total <= Self.maxMessageSize else {
            throw AWSClientError.invalidArgument("a batch is at most \(Self.maxMessageSize) bytes in all; this one has \(total)")
        }
        struct Entry: Encodable {
            var Id: String, MessageBody: String, DelaySeconds: Int?, MessageAttributes: [String: MessageAttributeValue]?
            var MessageGroupId: String?, MessageDeduplicationId: String?
        }
        struct Input: Encodable { var QueueUrl: String, Entries: [Entry] }
        struct Output: Decodable {
            struct Success: Decodable { var Id: String, MessageId: String, MD5OfMessageBody: String? }
            struct Failure: Decodable { var Id: String, Code: String, Message: String?, SenderFault: Bool? }
            var Successful: [Success]?, Failed: [Failure]?
        }
        let output = try await call(
            "SendMessageBatch",
            Input(QueueUrl: queueURL, Entries: entries.map {
                Entry(Id: $0.id, MessageBody: $0.body, DelaySeconds: $0.delaySeconds, MessageAttributes: $0.attributes.isEmpty ? nil : $0.attributes,
                      MessageGroupId: $0.groupID, MessageDeduplicationId: $0.deduplicationID)
            }),
            Output.self
        )
        let bodies = Dictionary(uniqueKeysWithValues: entries.map { ($0.id, $0.body) })
        for success in output.Successful ?? [] {
            if let md5 = success.MD5OfMessageBody, let body = bodies[success.Id], md5 != Self.md5(body) {
                throw AWSClientError.invalidResponse("SendMessageBatch: MD5OfMessageBody of entry \(success.Id) does not match")
            }
        }
        return SQSBatchResult(
            successful: (output.Successful ?? []).map { .init(id: $0.Id, messageID: $0.MessageId) },
            failed: (output.Failed ?? []).map { .init(id: $0.Id, code: $0.Code, message: $0.Message, senderFault: $0.SenderFault ?? false) }
        )
    }

    /// Receives up to `maxMessages` (1-10) messages, waiting up to `waitTime` seconds (0-20) for
    /// one to arrive (long polling). System attributes and all message attributes come with them.
    public func receiveMessages(
        queueURL: String, maxMessages: Int = 1, waitTime: Int = 20, visibilityTimeout: Int? = nil,
        systemAttributes: [String] = ["All"], messageAttributes: [String] = ["All"]
    ) async throws -> [SQSMessage] {
        guard (1...10).contains(maxMessages) else { throw AWSClientError.invalidArgument("MaxNumberOfMessages is 1 to 10, not \(maxMessages)") }
        guard (0...20).contains(waitTime) else { throw AWSClientError.invalidArgument("WaitTimeSeconds is 0 to 20, not \(waitTime)") }
        if let visibilityTimeout { try Self.validate(visibilityTimeout: visibilityTimeout) }
        var input = JSONObjectWriter()
        input.string("QueueUrl", queueURL)
        input.integer("MaxNumberOfMessages", maxMessages)
        input.integer("WaitTimeSeconds", waitTime)
        input.integer("VisibilityTimeout", visibilityTimeout)
        input.strings("MessageSystemAttributeNames", systemAttributes)
        input.strings("MessageAttributeNames", messageAttributes)
        struct Output: Decodable {
            struct Message: Decodable {
                var MessageId: String, ReceiptHandle: String, Body: String, MD5OfBody: String?
                var Attributes: [String: String]?, MessageAttributes: [String: MessageAttributeValue]?, MD5OfMessageAttributes: String?
            }
            var Messages: [Message]?
        }
        let answer = try await call("ReceiveMessage", input, timeout: .seconds(Int64(waitTime) + 20))
        let messages: [ReceiveMessageAnswer.Message]
        if let read = answer.withUnsafeReadableBytes({ ReceiveMessageAnswer.messages(in: $0) }) {
            messages = read
        } else {
            let output: Output
            do {
                output = try JSONDecoder().decode(Output.self, from: Data(answer.readableBytesView))
            } catch {
                throw AWSClientError.invalidResponse("AmazonSQS.ReceiveMessage: cannot read the response: \(error)")
            }
            messages = (output.Messages ?? []).map {
                .init(
                    messageID: $0.MessageId, receiptHandle: $0.ReceiptHandle, body: $0.Body, md5OfBody: $0.MD5OfBody, attributes: $0.Attributes,
                    messageAttributes: $0.MessageAttributes, md5OfMessageAttributes: $0.MD5OfMessageAttributes
                )
            }
        }
        return try messages.map { message in
            if let md5 = message.md5OfBody, md5 != Self.md5(message.body) {
                throw AWSClientError.invalidResponse("ReceiveMessage: MD5OfBody of \(message.messageID) does not match its body")
            }
            if let md5 = message.md5OfMessageAttributes, let attributes = message.messageAttributes, md5 != Self.md5(attributes) {
                throw AWSClientError.invalidResponse("ReceiveMessage: MD5OfMessageAttributes of \(message.messageID) does not match")
            }
            return SQSMessage(
                messageID: message.messageID, receiptHandle: message.receiptHandle, body: message.body,
                attributes: message.attributes ?? [:], messageAttributes: message.messageAttributes ?? [:]
            )
        }
    }

    /// Deletes a received message.
    public func deleteMessage(queueURL: String, receiptHandle: String) async throws {
        var input = JSONObjectWriter()
        input.string("QueueUrl", queueURL)
        input.string("ReceiptHandle", receiptHandle)
        _ = try await call("DeleteMessage", input)
    }

    /// Deletes up to 10 received messages at once; returns the receipt handles SQS refused (with why).
    /// Each failure is per message: the others are deleted.
    @discardableResult
    public func deleteMessageBatch(queueURL: String, receiptHandles: [String]) async throws -> [(receiptHandle: String, code: String, message: String?)] {
        guard (1...10).contains(receiptHandles.count) else { throw AWSClientError.invalidArgument("a batch has 1 to 10 entries, not \(receiptHandles.count)") }
        var input = JSONObjectWriter()
        input.string("QueueUrl", queueURL)
        input.objects("Entries", Array(receiptHandles.enumerated())) { entry, object in
            object.string("Id", "m\(entry.offset)")
            object.string("ReceiptHandle", entry.element)
        }
        struct Output: Decodable {
            struct Failure: Decodable { var Id: String, Code: String, Message: String? }
            var Failed: [Failure]?
        }
        let answer = try await call("DeleteMessageBatch", input)
        let output: Output
        do {
            output = try JSONDecoder().decode(Output.self, from: Data(answer.readableBytesView))
        } catch {
            throw AWSClientError.invalidResponse("AmazonSQS.DeleteMessageBatch: cannot read the response: \(error)")
        }
        return (output.Failed ?? []).compactMap { failure in
            guard let index = Int(failure.Id.dropFirst()), receiptHandles.indices.contains(index) else { return nil }
            return (receiptHandles[index], failure.Code, failure.Message)
        }
    }

    /// Changes how long a received message stays hidden (0 makes it visible again at once; at most 12 hours).
    public func changeMessageVisibility(queueURL: String, receiptHandle: String, visibilityTimeout: Int) async throws {
        try Self.validate(visibilityTimeout: visibilityTimeout)
        var input = JSONObjectWriter()
        input.string("QueueUrl", queueURL)
        input.string("ReceiptHandle", receiptHandle)
        input.integer("VisibilityTimeout", visibilityTimeout)
        _ = try await call("ChangeMessageVisibility", input)
    }

    /// The URL of a queue by name.
    public func queueURL(named name: String, ownerAccountID: String? = nil) async throws -> String {
        guard !name.isEmpty, name.count <= 80 else { throw AWSClientError.invalidArgument("a queue name has 1 to 80 characters") }
        struct Input: Encodable { var QueueName: String, QueueOwnerAWSAccountId: String? }
        struct Output: Decodable { var QueueUrl: String }
        return try await call("GetQueueUrl", Input(QueueName: name, QueueOwnerAWSAccountId: ownerAccountID), Output.self).QueueUrl
    }

    /// Queue attributes by name (`All` for every one).
    public func queueAttributes(queueURL: String, names: [String] = ["All"]) async throws -> [String: String] {
        struct Input: Encodable { var QueueUrl: String, AttributeNames: [String] }
        struct Output: Decodable { var Attributes: [String: String]? }
        return try await call("GetQueueAttributes", Input(QueueUrl: queueURL, AttributeNames: names), Output.self).Attributes ?? [:]
    }

    /// Creates a queue (for set-up scripts and tests); returns its URL.
    @discardableResult
    public func createQueue(named name: String, attributes: [String: String] = [:]) async throws -> String {
        struct Input: Encodable { var QueueName: String, Attributes: [String: String]? }
        struct Output: Decodable { var QueueUrl: String }
        return try await call("CreateQueue", Input(QueueName: name, Attributes: attributes.isEmpty ? nil : attributes), Output.self).QueueUrl
    }

    /// Calls an operation whose request was written by hand; returns the raw answer.
    private func call(_ operation: String, _ input: JSONObjectWriter, timeout: Duration? = nil) async throws -> ByteBuffer {
        try await aws.callJSON(.sqs, target: "AmazonSQS.\(operation)", bytes: input.finishedBytes, timeout: timeout, extraHeaders: [("x-amzn-query-mode", "true")])
    }

    /// Message attributes as SQS's JSON has them: `{"name": {"DataType": …, "StringValue": …}}`.
    static func write(_ attributes: [String: MessageAttributeValue], to object: inout JSONObjectWriter) {
        for (name, value) in attributes {
            object.object(name) { attribute in
                attribute.string("DataType", value.dataType)
                attribute.string("StringValue", value.stringValue)
                attribute.string("BinaryValue", value.binaryValue)
            }
        }
    }

    private func call<Output: Decodable>(_ operation: String, _ input: some Encodable, _ output: Output.Type, timeout: Duration? = nil) async throws -> Output {
        try await aws.callJSON(.sqs, target: "AmazonSQS.\(operation)", input: input, as: output, timeout: timeout, extraHeaders: [("x-amzn-query-mode", "true")])
    }

    // MARK: Checks before sending

    static func validate(body: String, attributes: [String: MessageAttributeValue], delaySeconds: Int?) throws(AWSClientError) {
        guard !body.isEmpty else { throw .invalidArgument("a message body must not be empty") }
        if let bad = body.unicodeScalars.first(where: { !isAllowed($0) }) {
            throw .invalidArgument("a message body may not contain U+\(String(bad.value, radix: 16, uppercase: true))")
        }
        guard attributes.count <= 10 else { throw .invalidArgument("a message has at most 10 attributes, not \(attributes.count)") }
        let size = size(body: body, attributes: attributes)
        guard size <= maxMessageSize else {
            throw .invalidArgument("a message is at most \(maxMessageSize) bytes (body and attributes); this one has \(size)")
        }
        if let delaySeconds, !(0...900).contains(delaySeconds) { throw .invalidArgument("DelaySeconds is 0 to 900, not \(delaySeconds)") }
    }

    static func validate(visibilityTimeout: Int) throws(AWSClientError) {
        guard (0...43_200).contains(visibilityTimeout) else { throw .invalidArgument("VisibilityTimeout is 0 to 43200 seconds, not \(visibilityTimeout)") }
    }

    /// Whether SQS accepts the character in a message body.
    public static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x9, 0xA, 0xD, 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: true
        default: false
        }
    }

    static func size(body: String, attributes: [String: MessageAttributeValue]) -> Int {
        attributes.reduce(body.utf8.count) { total, attribute in
            total + attribute.key.utf8.count + attribute.value.dataType.utf8.count
                + (attribute.value.stringValue?.utf8.count ?? 0) + (attribute.value.binaryValue.flatMap { Base64.decode($0)?.count } ?? 0)
        }
    }

    // MARK: Checksums

    /// Hex MD5 of the UTF-8 body.
    public static func md5(_ body: String) -> String { Hex.encode(MD5Hasher.hash(Array(body.utf8))) }

    /// SQS's MD5 of message attributes: for each attribute sorted by name, length-prefixed name and
    /// type, then 1 and the string value or 2 and the binary value.
    public static func md5(_ attributes: [String: MessageAttributeValue]) -> String {
        var bytes: [UInt8] = []
        func append(_ field: [UInt8]) {
            let length = UInt32(field.count)
            bytes += [UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
            bytes += field
        }
        for name in attributes.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let value = attributes[name]!
            append(Array(name.utf8))
            append(Array(value.dataType.utf8))
            if let binary = value.binaryValue {
                bytes.append(2)
                append(Base64.decode(binary) ?? [])
            } else {
                bytes.append(1)
                append(Array((value.stringValue ?? "").utf8))
            }
        }
        return Hex.encode(MD5Hasher.hash(bytes))
    }
}
