import Foundation
import NIOCore
import Testing

@testable import MartletLocal

/// The endpoint's JSON writer says what JSONSerialization says, and gives up on values it does not know.
@Suite struct JSONBodyWriterTests {
    @Test func agreesWithJSONSerialization() throws {
        let object: [String: Any] = [
            "QueueUrl": "http://localhost:4566/000000000000/q", "Count": 3, "Big": Int64(1) << 40, "Flag": true, "Off": false,
            "Text": "quote \" backslash \\ slash / newline \n tab \t bell \u{07} é 🎵",
            "Messages": [["MessageId": "m", "Body": "{\"a\":1}", "Attributes": ["ApproximateReceiveCount": "2"]] as [String: Any]],
            "Empty": [String: Any](), "List": [1, 2, 3], "Names": ["a", "b"], "Tags": ["k": "v", "quote": "\""] as [String: String],
        ]
        var ours = ByteBuffer()
        #expect(JSONBody.write(object, to: &ours))
        let parsed = try JSONSerialization.jsonObject(with: Data(ours.readableBytesView)) as! NSDictionary
        let reference = try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: object)) as! NSDictionary
        #expect(parsed == reference)
        var ignored = ByteBuffer()
        #expect(!JSONBody.write(["Value": 1.5], to: &ignored))
        let response = JSONBody.response(["Value": 1.5, "Name": "x"], requestID: "r")
        let fallback = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as! [String: Any]
        #expect(fallback["Value"] as? Double == 1.5)
    }
}
