import Foundation
import MartletAWS
import MartletRuntime

extension SampleEvents {
    /// A batch from an SQS event source mapping.
    public struct SQSOptions: Sendable {
        /// The sample queue, Martlet's jobs queue.
        public static let defaultQueueARN = "arn:aws:sqs:us-east-1:\(SampleEvents.accountID):martlet-jobs"

        /// One record each, in order.
        public var bodies: [String]
        /// The number of records, at least `bodies.count` (the default); those past the bodies carry a sample job message.
        public var count: Int?
        public var queueARN: String
        /// String message attributes, on every record.
        public var attributes: [NameValue]
        /// When Lambda received the batch.
        public var time: Date

        public init(bodies: [String] = [], count: Int? = nil, queueARN: String = defaultQueueARN, attributes: [NameValue] = [], time: Date = Date()) {
            self.bodies = bodies
            self.count = count
            self.queueARN = queueARN
            self.attributes = attributes
            self.time = time
        }
    }

    /// An SQS event as Lambda's event source mapping delivers it, with real MD5s of bodies and attributes.
    /// - Throws: ``SampleEventError`` for a malformed queue ARN, or a count out of range or below the number of bodies.
    public static func sqs(_ options: SQSOptions) throws(SampleEventError) -> SQSEvent {
        // arn:aws:sqs:REGION:ACCOUNT:NAME
        let arn = options.queueARN.split(separator: ":", omittingEmptySubsequences: false)
        guard arn.count == 6, arn[0] == "arn", arn[2] == "sqs", !arn[3].isEmpty, !arn[4].isEmpty, !arn[5].isEmpty else {
            throw .invalidOption("'\(options.queueARN)' is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)")
        }
        let count = options.count ?? max(1, options.bodies.count)
        guard count >= max(1, options.bodies.count), count <= 10_000 else {
            throw .invalidOption("the count must be between \(max(1, options.bodies.count)) (the number of bodies) and 10000")
        }
        let attributes = Dictionary(options.attributes.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
        let received = epochMilliseconds(options.time)
        let records = (0..<count).map { index in
            let body = index < options.bodies.count ? options.bodies[index] : #"{"jobId":"\#(UUID().uuidString.lowercased())"}"#
            return SQSEvent.Message(
                messageId: UUID().uuidString.lowercased(),
                receiptHandle: "AQEB" + Data(randomBytes(126)).base64EncodedString(),
                body: body,
                attributes: [
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": String(received - 50 + Int64(index)),
                    "SenderId": "AROA3EXAMPLEROLEID000:martlet-api",
                    "ApproximateFirstReceiveTimestamp": String(received + Int64(index)),
                ],
                messageAttributes: attributes.mapValues { SQSEvent.Message.Attribute(stringValue: $0, dataType: "String") },
                md5OfBody: SQSClient.md5(body),
                md5OfMessageAttributes: attributes.isEmpty ? nil : SQSClient.md5(attributes.mapValues(MessageAttributeValue.string)),
                eventSourceARN: options.queueARN, awsRegion: String(arn[3])
            )
        }
        return SQSEvent(records: records)
    }
}
