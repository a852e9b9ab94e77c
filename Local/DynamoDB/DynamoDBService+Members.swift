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

    /// The member `name` as `extract` reads it; a member `extract` refuses is a mismatch.
    private mutating func read<Value>(_ name: String, _ extract: (AttributeValueJSON.Member) -> Value?) -> Value? {
        guard let member = members[name] else { return nil }
        if let value = extract(member) { return value }
        mismatch = true
        return nil
    }

    mutating func string(_ name: String) -> String? { read(name) { if case .string(let text) = $0 { text } else { nil } } }
    mutating func bool(_ name: String) -> Bool? { read(name) { if case .bool(let flag) = $0 { flag } else { nil } } }
    mutating func item(_ name: String) -> [String: AttributeValue]? { read(name) { if case .item(let item) = $0 { item } else { nil } } }
    mutating func strings(_ name: String) -> [String: String]? { read(name) { if case .strings(let map) = $0 { map } else { nil } } }
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

extension DynamoDBService.ConditionCheckInput: MembersDecodable {
    init?(members map: [String: AttributeValueJSON.Member]) {
        var members = Members(map)
        guard let table = members.string("TableName"), let key = members.item("Key"), let condition = members.string("ConditionExpression") else { return nil }
        self.init(
            TableName: table, Key: key, ConditionExpression: condition, ExpressionAttributeNames: members.strings("ExpressionAttributeNames"),
            ExpressionAttributeValues: members.item("ExpressionAttributeValues"),
            ReturnValuesOnConditionCheckFailure: members.string("ReturnValuesOnConditionCheckFailure")
        )
        if members.mismatch { return nil }
    }
}

extension DynamoDBService.TransactWriteItemsInput: MembersDecodable {
    init?(members map: [String: AttributeValueJSON.Member]) {
        var members = Members(map)
        guard case .transactItems(let entries)? = map["TransactItems"] else { return nil }
        var items: [DynamoDBService.TransactWriteItem] = []
        items.reserveCapacity(entries.count)
        for entry in entries {
            var item = DynamoDBService.TransactWriteItem()
            for (action, actionMembers) in entry {
                switch action {
                case "Put": guard let put = DynamoDBService.PutItemInput(members: actionMembers) else { return nil }; item.Put = put
                case "Update": guard let update = DynamoDBService.UpdateItemInput(members: actionMembers) else { return nil }; item.Update = update
                case "Delete": guard let delete = DynamoDBService.DeleteItemInput(members: actionMembers) else { return nil }; item.Delete = delete
                case "ConditionCheck":
                    guard let check = DynamoDBService.ConditionCheckInput(members: actionMembers) else { return nil }
                    item.ConditionCheck = check
                default: return nil
                }
            }
            items.append(item)
        }
        self.init(
            TransactItems: items, ClientRequestToken: members.string("ClientRequestToken"), ReturnConsumedCapacity: members.string("ReturnConsumedCapacity"),
            ReturnItemCollectionMetrics: members.string("ReturnItemCollectionMetrics")
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
