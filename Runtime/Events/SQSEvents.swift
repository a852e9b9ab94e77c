/// A batch of SQS messages delivered by an event source mapping.
public struct SQSEvent: Codable, Sendable, Equatable {
    /// One message.
    public struct Message: Codable, Sendable, Equatable {
        /// A typed message attribute.
        public struct Attribute: Codable, Sendable, Equatable {
            public var stringValue: String?
            public var binaryValue: String?
            public var stringListValues: [String]?
            public var binaryListValues: [String]?
            /// `String`, `Number`, `Binary`, optionally with a custom suffix (`Number.float`).
            public var dataType: String

            public init(stringValue: String? = nil, binaryValue: String? = nil, stringListValues: [String]? = [], binaryListValues: [String]? = [], dataType: String) {
                self.stringValue = stringValue
                self.binaryValue = binaryValue
                self.stringListValues = stringListValues
                self.binaryListValues = binaryListValues
                self.dataType = dataType
            }
        }

        public var messageId: String
        public var receiptHandle: String
        public var body: String
        /// System attributes: `ApproximateReceiveCount`, `SentTimestamp`, `AWSTraceHeader`, …
        public var attributes: [String: String]
        public var messageAttributes: [String: Attribute]
        public var md5OfBody: String
        public var md5OfMessageAttributes: String?
        public var eventSource: String
        public var eventSourceARN: String
        public var awsRegion: String

        public init(
            messageId: String, receiptHandle: String, body: String, attributes: [String: String] = [:],
            messageAttributes: [String: Attribute] = [:], md5OfBody: String, md5OfMessageAttributes: String? = nil,
            eventSource: String = "aws:sqs", eventSourceARN: String, awsRegion: String
        ) {
            self.messageId = messageId
            self.receiptHandle = receiptHandle
            self.body = body
            self.attributes = attributes
            self.messageAttributes = messageAttributes
            self.md5OfBody = md5OfBody
            self.md5OfMessageAttributes = md5OfMessageAttributes
            self.eventSource = eventSource
            self.eventSourceARN = eventSourceARN
            self.awsRegion = awsRegion
        }
    }

    public var records: [Message]

    public init(records: [Message]) { self.records = records }

    enum CodingKeys: String, CodingKey {
        case records = "Records"
    }
}

/// The partial batch response: the messages that failed and should be retried.
public struct SQSBatchResponse: Codable, Sendable, Equatable {
    /// One failed message, by id.
    public struct ItemFailure: Codable, Sendable, Equatable {
        public var itemIdentifier: String
        public init(itemIdentifier: String) { self.itemIdentifier = itemIdentifier }
    }

    public var batchItemFailures: [ItemFailure]

    public init(batchItemFailures: [ItemFailure] = []) { self.batchItemFailures = batchItemFailures }

    /// The response that marks `messageIDs` as failed.
    public init(failedMessageIDs: [String]) {
        self.init(batchItemFailures: failedMessageIDs.map(ItemFailure.init(itemIdentifier:)))
    }
}
