import Foundation
import Testing

@testable import MartletAWS

/// ReceiveMessage answers read byte by byte agree with JSONDecoder's reading of them.
@Suite struct ReceiveMessageAnswerTests {
    struct Output: Decodable {
        struct Message: Decodable {
            var MessageId: String, ReceiptHandle: String, Body: String, MD5OfBody: String?
            var Attributes: [String: String]?, MessageAttributes: [String: MessageAttributeValue]?, MD5OfMessageAttributes: String?
        }
        var Messages: [Message]?
    }

    static let answers = [
        #"{}"#,
        #"{"Messages":[]}"#,
        #"{"Messages":null}"#,
        #"{"Messages":[{"MessageId":"m-1","ReceiptHandle":"rh+/=","Body":"{\"jobId\":\"j\"}","MD5OfBody":"abc"}]}"#,
        """
         { "Messages" : [ { "Body" : "line\\nbreak \\u00e9 \\ud83d\\ude00 \\"q\\"", "MessageId" : "m-2", "ReceiptHandle" : "h",
           "Attributes" : { "ApproximateReceiveCount" : "3", "SentTimestamp" : "1700000000000" },
           "MessageAttributes" : { "trace" : { "DataType" : "String", "StringValue" : "Root=1-a-b", "StringListValues" : [], "BinaryListValues" : [] },
                                   "blob" : { "DataType" : "Binary", "BinaryValue" : "AAEC" } },
           "MD5OfMessageAttributes" : "def", "Unknown" : { "nested" : [1, 2.5e3, true, false, null, {"a": [ ]}] } },
           { "MessageId" : "m-3", "ReceiptHandle" : "h3", "Body" : "", "Attributes" : null } ], "ResponseMetadata" : { "RequestId" : "r" } }
        """,
    ]

    @Test(arguments: answers) func agreesWithJSONDecoder(answer: String) throws {
        let expected = try JSONDecoder().decode(Output.self, from: Data(answer.utf8)).Messages ?? []
        let read = try #require(Array(answer.utf8).withUnsafeBytes { ReceiveMessageAnswer.messages(in: $0) })
        #expect(read.count == expected.count)
        for (message, want) in zip(read, expected) {
            #expect(message.messageID == want.MessageId)
            #expect(message.receiptHandle == want.ReceiptHandle)
            #expect(message.body == want.Body)
            #expect(message.md5OfBody == want.MD5OfBody)
            #expect(message.attributes == want.Attributes)
            #expect(message.messageAttributes == want.MessageAttributes)
            #expect(message.md5OfMessageAttributes == want.MD5OfMessageAttributes)
        }
    }

    /// What it cannot read goes to JSONDecoder, which reports the error.
    @Test(arguments: [
        #"{"Messages":[{"MessageId":"m","Body":"b"}]}"#, #"{"Messages":[{"MessageId":"m","ReceiptHandle":"h","Body":"b"}"#,
        #"{"Messages":[{"MessageId":5,"ReceiptHandle":"h","Body":"b"}]}"#, #"{"Messages":{}} x"#, "",
    ])
    func refusesWhatItCannotRead(answer: String) {
        #expect(Array(answer.utf8).withUnsafeBytes { ReceiveMessageAnswer.messages(in: $0) } == nil)
    }
}
