import Foundation
import MartletAWS
import Testing

/// The byte-level item codec agrees with Codable in both directions, on every kind of value.
@Suite struct AttributeValueJSONTests {
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let pieces = ["a", "é", "日本", "🎵", "\"", "\\", "/", "\n", "\t", "\u{01}", "\u{1F}", " ", "x y", "\u{7F}", "'", "<&>"]

    static func text(_ random: inout Generator) -> String {
        (0..<Int.random(in: 0...6, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    static func value(_ random: inout Generator, depth: Int) -> AttributeValue {
        switch Int.random(in: 0..<(depth > 2 ? 8 : 10), using: &random) {
        case 0: .s(text(&random))
        case 1: .n(String(Int.random(in: -1_000_000...1_000_000, using: &random)))
        case 2: .b((0..<Int.random(in: 0...20, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        case 3: .bool(Bool.random(using: &random))
        case 4: .null
        case 5: .ss(Array(Set((0..<Int.random(in: 1...5, using: &random)).map { _ in text(&random) + "s" })))
        case 6: .ns((0..<Int.random(in: 1...4, using: &random)).map { String($0 * 7) })
        case 7: .bs([[1, 2, 3], [], [255]])
        case 8: .m(item(&random, depth: depth + 1))
        default: .l((0..<Int.random(in: 0...4, using: &random)).map { _ in value(&random, depth: depth + 1) })
        }
    }

    static func item(_ random: inout Generator, depth: Int = 0) -> [String: AttributeValue] {
        var item: [String: AttributeValue] = [:]
        for _ in 0..<Int.random(in: 0...6, using: &random) { item[text(&random) + "k"] = value(&random, depth: depth) }
        return item
    }

    @Test func agreesWithCodableBothWays() throws {
        var random = Generator(state: 42)
        for _ in 0..<500 {
            let item = Self.item(&random)
            let ours = AttributeValueJSON.encode(item)
            #expect(try JSONDecoder().decode([String: AttributeValue].self, from: Data(ours)) == item)
            #expect(try AttributeValueJSON.decodeItem(ours) == item)
            let theirs = try JSONEncoder().encode(item)
            #expect(try AttributeValueJSON.decodeItem(Array(theirs)) == item)
        }
    }

    @Test func readsWhitespaceEscapesAndSurrogatePairs() throws {
        let text = #" { "a" : { "S" : "x\/y\u00e9\ud83c\udfb5\n" } , "b":{"NULL":true},"c":{"L":[ ]},"d":{"M":{}} } "#
        let item = try AttributeValueJSON.decodeItem(Array(text.utf8))
        #expect(item == ["a": .s("x/yé🎵\n"), "b": .null, "c": .l([]), "d": .m([:])])
    }

    /// Requests and answers of the single-item operations: what the members codec writes, Codable
    /// reads the same, and it reads what Codable writes.
    @Test func requestsAndAnswersAgreeWithCodable() throws {
        struct Request: Codable, Equatable {
            var TableName: String, Key: [String: AttributeValue], UpdateExpression: String?, ConsistentRead: Bool?
            var ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: [String: AttributeValue]?, Limit: Int?
            var Items: [[String: AttributeValue]]?
        }
        var random = Generator(state: 7)
        for _ in 0..<200 {
            let request = Request(
                TableName: "jobs-\(Self.text(&random))", Key: Self.item(&random), UpdateExpression: "SET #s = :v, #n = #n + :one",
                ConsistentRead: Bool.random(using: &random), ExpressionAttributeNames: ["#s": "state", "#n": Self.text(&random)],
                ExpressionAttributeValues: Self.item(&random), Limit: Int.random(in: 1...1000, using: &random),
                Items: [Self.item(&random), Self.item(&random)]
            )
            let members: [(String, AttributeValueJSON.Member)] = [
                ("TableName", .string(request.TableName)), ("Key", .item(request.Key)), ("UpdateExpression", .string(request.UpdateExpression!)),
                ("ConsistentRead", .bool(request.ConsistentRead!)), ("ExpressionAttributeNames", .strings(request.ExpressionAttributeNames!)),
                ("ExpressionAttributeValues", .item(request.ExpressionAttributeValues!)), ("Limit", .number(String(request.Limit!))),
                ("Items", .items(request.Items!)),
            ]
            let written = AttributeValueJSON.encodeMembers(members)
            #expect(try JSONDecoder().decode(Request.self, from: Data(written)) == request)
            let read = try #require(AttributeValueJSON.decodeMembers(Array(try JSONEncoder().encode(request))))
            #expect(read.count == members.count)
            for (name, member) in members { #expect(read[name] == member, "\(name)") }
        }
    }

    @Test func transactItemsAgreeWithCodable() throws {
        struct Action: Codable, Equatable {
            var TableName: String, Item: [String: AttributeValue]?, Key: [String: AttributeValue]?, UpdateExpression: String?, ConditionExpression: String?
            var ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: [String: AttributeValue]?
        }
        struct Request: Codable, Equatable {
            var TransactItems: [[String: Action]], ClientRequestToken: String
        }
        var random = Generator(state: 11)
        for _ in 0..<100 {
            let put = Action(
                TableName: "jobs", Item: Self.item(&random), Key: nil, UpdateExpression: nil, ConditionExpression: "attribute_not_exists(pk)",
                ExpressionAttributeNames: nil, ExpressionAttributeValues: nil
            )
            let update = Action(
                TableName: "jobs", Item: nil, Key: Self.item(&random), UpdateExpression: "ADD #c :one", ConditionExpression: nil, ExpressionAttributeNames: ["#c": Self.text(&random)],
                ExpressionAttributeValues: Self.item(&random)
            )
            let request = Request(TransactItems: [["Put": put], ["Update": update]], ClientRequestToken: Self.text(&random))
            func members(_ action: Action) -> [String: AttributeValueJSON.Member] {
                var members: [String: AttributeValueJSON.Member] = ["TableName": .string(action.TableName)]
                if let item = action.Item { members["Item"] = .item(item) }
                if let key = action.Key { members["Key"] = .item(key) }
                if let update = action.UpdateExpression { members["UpdateExpression"] = .string(update) }
                if let condition = action.ConditionExpression { members["ConditionExpression"] = .string(condition) }
                if let names = action.ExpressionAttributeNames { members["ExpressionAttributeNames"] = .strings(names) }
                if let values = action.ExpressionAttributeValues { members["ExpressionAttributeValues"] = .item(values) }
                return members
            }
            let written: [(String, AttributeValueJSON.Member)] = [
                ("TransactItems", .transactItems([["Put": members(put)], ["Update": members(update)]])), ("ClientRequestToken", .string(request.ClientRequestToken)),
            ]
            #expect(try JSONDecoder().decode(Request.self, from: Data(AttributeValueJSON.encodeMembers(written))) == request)
            let read = try #require(AttributeValueJSON.decodeMembers(Array(try JSONEncoder().encode(request))))
            #expect(read["TransactItems"] == written[0].1 && read["ClientRequestToken"] == written[1].1)
        }
    }

    @Test func membersLeaveNullsOutAndRefuseWhatTheyDoNotKnow() {
        #expect(AttributeValueJSON.decodeMembers(Array(#" { "ConditionExpression" : null, "TableName": "t" } "#.utf8)) == ["TableName": .string("t")])
        #expect(AttributeValueJSON.decodeMembers(Array(#"{"Attributes":{"a":{"N":"1"}}, "ConsumedCapacity": {"TableName": "t"}}"#.utf8)) == nil)
        #expect(AttributeValueJSON.decodeMembers(Array(#"{"Key":{"a":{"S":1}}}"#.utf8)) == nil)
        #expect(AttributeValueJSON.decodeMembers(Array("{}".utf8)) == [:])
        #expect(AttributeValueJSON.decodeMembers(Array("{".utf8)) == nil)
    }

    @Test func refusesWhatIsNotAnItem() {
        for text in ["", "{", #"{"a":{"X":"1"}}"#, #"{"a":{"S":1}}"#, #"{"a":{"S":"\ud800"}}"#, #"{"a":{"S":"x"}} x"#, #"{"a":{"B":"%%%"}}"#, "[]"] {
            #expect(throws: AttributeValueJSON.DecodingError.self) { try AttributeValueJSON.decodeItem(Array(text.utf8)) }
        }
    }
}
