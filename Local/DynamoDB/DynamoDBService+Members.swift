import MartletAWS

/// The data operations' requests and answers read and written by the byte-level codec
/// (`AttributeValueJSON.decodeMembers` / `encodeMembers`) instead of Codable: they are most of an
/// application's DynamoDB traffic. A request the codec cannot take as it is (an unexpected member
/// type, say) goes to Codable, which reports what is wrong with it as before.
protocol MembersDecodable {
    init?(members: [String: AttributeValueJSON.Member])
}

/// An answer the byte-level codec writes.
protocol MembersEncodable {
    var members: [(String, AttributeValueJSON.Member)] { get }
}

/// Typed reads of members; each is nil on a member of another type, which sends the request to Codable.
private struct Members {
    let members: [String: AttributeValueJSON.Member]
    /// A member was present with a type the request does not allow.
    var mismatch = false

    init(_ members: [String: AttributeValueJSON.Member]) { self.members = members }

    mutating func string(_ name: String) -> String? {
        guard let member = members[name] else { return nil }
        if case .string(let text) = member { return text }
        mismatch = true
        return nil
    }

    mutating func bool(_ name: String) -> Bool? {
        guard let member = members[name] else { return nil }
        if case .bool(let flag) = member { return flag }
        mismatch = true
        return nil
    }

    mutating func item(_ name: String) -> [String: AttributeValue]? {
        guard let member = members[name] else { return nil }
        if case .item(let item) = member { return item }
        mismatch = true
        return nil
    }

    mutating func strings(_ name: String) -> [String: String]? {
        guard let member = members[name] else { return nil }
        if case .strings(let map) = member { return map }
        mismatch = true
        return nil
    }
}

extension DynamoDBService.PutItemInput: MembersDecodable {
    init?(members map: [String: AttributeValueJSON.Member]) {
        var members = Members(map)
        guard let table = members.string("TableName"), let item = members.item("Item") else { return nil }
        self.init(
            TableName: table, Item: item, ConditionExpression: members.string("ConditionExpression"),
            ExpressionAttributeNames: members.strings("ExpressionAttributeNames"), ExpressionAttributeValues: members.item("ExpressionAttributeValues"),
            ReturnValues: members.string("ReturnValues"), ReturnValuesOnConditionCheckFailure: members.string("ReturnValuesOnConditionCheckFailure")
        )
        if members.mismatch { return nil }
    }
}

extension DynamoDBService.KeyInput: MembersDecodable {
    init?(members map: [String: AttributeValueJSON.Member]) {
        var members = Members(map)
        guard let table = members.string("TableName"), let key = members.item("Key") else { return nil }
        self.init(
            TableName: table, Key: key, ConsistentRead: members.bool("ConsistentRead"), ProjectionExpression: members.string("ProjectionExpression"),
            ExpressionAttributeNames: members.strings("ExpressionAttributeNames")
        )
        if members.mismatch { return nil }
    }
}

extension DynamoDBService.UpdateItemInput: MembersDecodable {
    init?(members map: [String: AttributeValueJSON.Member]) {
        var members = Members(map)
        guard let table = members.string("TableName"), let key = members.item("Key") else { return nil }
        self.init(
            TableName: table, Key: key, UpdateExpression: members.string("UpdateExpression"), ConditionExpression: members.string("ConditionExpression"),
            ExpressionAttributeNames: members.strings("ExpressionAttributeNames"), ExpressionAttributeValues: members.item("ExpressionAttributeValues"),
            ReturnValues: members.string("ReturnValues"), ReturnValuesOnConditionCheckFailure: members.string("ReturnValuesOnConditionCheckFailure")
        )
        if members.mismatch { return nil }
    }
}

extension DynamoDBService.DeleteItemInput: MembersDecodable {
    init?(members map: [String: AttributeValueJSON.Member]) {
        var members = Members(map)
        guard let table = members.string("TableName"), let key = members.item("Key") else { return nil }
        self.init(
            TableName: table, Key: key, ConditionExpression: members.string("ConditionExpression"),
            ExpressionAttributeNames: members.strings("ExpressionAttributeNames"), ExpressionAttributeValues: members.item("ExpressionAttributeValues"),
            ReturnValues: members.string("ReturnValues"), ReturnValuesOnConditionCheckFailure: members.string("ReturnValuesOnConditionCheckFailure")
        )
        if members.mismatch { return nil }
    }
}

extension DynamoDBService.AttributesOutput: MembersEncodable {
    var members: [(String, AttributeValueJSON.Member)] { Attributes.map { [("Attributes", .item($0))] } ?? [] }
}

extension DynamoDBService.ItemOutput: MembersEncodable {
    var members: [(String, AttributeValueJSON.Member)] { Item.map { [("Item", .item($0))] } ?? [] }
}
