#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What `ReturnValues` asks DynamoDB to send back from a write.
public enum ReturnValues: String, Sendable, Encodable {
    case none = "NONE"
    case allOld = "ALL_OLD"
    case updatedOld = "UPDATED_OLD"
    case allNew = "ALL_NEW"
    case updatedNew = "UPDATED_NEW"
}

/// The expression attribute names (`#name`) and values (`:value`) an expression refers to.
public struct ExpressionAttributes: Sendable, Hashable {
    public var names: [String: String]
    public var values: [String: AttributeValue]

    public init(names: [String: String] = [:], values: [String: AttributeValue] = [:]) {
        self.names = names
        self.values = values
    }

    func validate() throws(AWSClientError) {
        for name in names.keys where !name.hasPrefix("#") { throw .invalidArgument("expression attribute name \(name) must start with #") }
        for name in values.keys where !name.hasPrefix(":") { throw .invalidArgument("expression attribute value \(name) must start with :") }
    }
}

/// One page of a query.
public struct QueryPage: Sendable, Hashable {
    public var items: [[String: AttributeValue]]
    /// Where the next page starts; `nil` on the last page.
    public var lastEvaluatedKey: [String: AttributeValue]?
    public var count: Int
    public var scannedCount: Int
}

/// Amazon DynamoDB over its JSON protocol.
///
/// ```swift
/// let table = DynamoDBClient(aws)
/// try await table.putItem(table: "jobs", item: ["pk": "job#1", "status": "QUEUED"],
///                         condition: "attribute_not_exists(pk)")
/// ```
/// A failed condition throws ``AWSServiceError`` with code `ConditionalCheckFailedException`.
public struct DynamoDBClient: Sendable {
    public let aws: AWSClient

    public init(_ aws: AWSClient) { self.aws = aws }

    /// Writes an item, optionally only when `condition` holds. Returns the old item with `.allOld`.
    @discardableResult
    public func putItem(
        table: String, item: [String: AttributeValue], condition: String? = nil, attributes: ExpressionAttributes = .init(),
        returnValues: ReturnValues = .none
    ) async throws -> [String: AttributeValue]? {
        try Self.validate(table: table)
        try attributes.validate()
        guard !item.isEmpty else { throw AWSClientError.invalidArgument("an item needs at least its key attributes") }
        var members: [(String, AttributeValueJSON.Member)] = [("TableName", .string(table)), ("Item", .item(item))]
        Self.append(condition: condition, attributes: attributes, returnValues: returnValues, to: &members)
        return try await callItem("PutItem", members, answer: "Attributes")
    }

    /// Reads an item by its key; `nil` when there is none.
    public func getItem(
        table: String, key: [String: AttributeValue], consistentRead: Bool = false, projection: String? = nil,
        attributes: ExpressionAttributes = .init()
    ) async throws -> [String: AttributeValue]? {
        try Self.validate(table: table)
        try Self.validate(key: key)
        var members: [(String, AttributeValueJSON.Member)] = [("TableName", .string(table)), ("Key", .item(key))]
        if consistentRead { members.append(("ConsistentRead", .bool(true))) }
        if let projection { members.append(("ProjectionExpression", .string(projection))) }
        if !attributes.names.isEmpty { members.append(("ExpressionAttributeNames", .strings(attributes.names))) }
        return try await callItem("GetItem", members, answer: "Item")
    }

    /// Updates an item with an update expression (`SET #s = :s ADD n :one`), optionally conditionally.
    @discardableResult
    public func updateItem(
        table: String, key: [String: AttributeValue], update: String, condition: String? = nil,
        attributes: ExpressionAttributes = .init(), returnValues: ReturnValues = .none
    ) async throws -> [String: AttributeValue]? {
        try Self.validate(table: table)
        try Self.validate(key: key)
        try attributes.validate()
        guard !update.isEmpty else { throw AWSClientError.invalidArgument("an update expression must not be empty") }
        var members: [(String, AttributeValueJSON.Member)] = [("TableName", .string(table)), ("Key", .item(key)), ("UpdateExpression", .string(update))]
        Self.append(condition: condition, attributes: attributes, returnValues: returnValues, to: &members)
        return try await callItem("UpdateItem", members, answer: "Attributes")
    }

    /// Deletes an item, optionally conditionally; returns the old item with `.allOld`.
    @discardableResult
    public func deleteItem(
        table: String, key: [String: AttributeValue], condition: String? = nil, attributes: ExpressionAttributes = .init(),
        returnValues: ReturnValues = .none
    ) async throws -> [String: AttributeValue]? {
        try Self.validate(table: table)
        try Self.validate(key: key)
        try attributes.validate()
        var members: [(String, AttributeValueJSON.Member)] = [("TableName", .string(table)), ("Key", .item(key))]
        Self.append(condition: condition, attributes: attributes, returnValues: returnValues, to: &members)
        return try await callItem("DeleteItem", members, answer: "Attributes")
    }

    private static func append(
        condition: String?, attributes: ExpressionAttributes, returnValues: ReturnValues, to members: inout [(String, AttributeValueJSON.Member)]
    ) {
        if let condition { members.append(("ConditionExpression", .string(condition))) }
        if !attributes.names.isEmpty { members.append(("ExpressionAttributeNames", .strings(attributes.names))) }
        if !attributes.values.isEmpty { members.append(("ExpressionAttributeValues", .item(attributes.values))) }
        if returnValues != .none { members.append(("ReturnValues", .string(returnValues.rawValue))) }
    }

    /// Calls a single-item operation, request and answer in DynamoDB's JSON written and read byte by
    /// byte (Codable reads an answer holding more than items and scalars); returns the item the
    /// answer names `answer`, if any.
    private func callItem(_ operation: String, _ members: [(String, AttributeValueJSON.Member)], answer: String) async throws -> [String: AttributeValue]? {
        let target = "DynamoDB_20120810.\(operation)"
        let body = try await aws.callJSON(.dynamoDB, target: target, bytes: AttributeValueJSON.encodeMembers(members))
        if let parsed = AttributeValueJSON.decodeMembers(body.readableBytesView) {
            if case .item(let item)? = parsed[answer] { return item }
            return nil
        }
        struct Output: Decodable { var Item: [String: AttributeValue]?, Attributes: [String: AttributeValue]? }
        do {
            let output = try JSONDecoder().decode(Output.self, from: Data(body.readableBytesView))
            return answer == "Item" ? output.Item : output.Attributes
        } catch {
            throw AWSClientError.invalidResponse("\(target): cannot read the response: \(error)")
        }
    }

    /// One page of items whose key matches `keyCondition` (`pk = :pk AND begins_with(sk, :p)`).
    public func query(
        table: String, index: String? = nil, keyCondition: String, filter: String? = nil, attributes: ExpressionAttributes = .init(),
        limit: Int? = nil, scanIndexForward: Bool = true, consistentRead: Bool = false, exclusiveStartKey: [String: AttributeValue]? = nil
    ) async throws -> QueryPage {
        try Self.validate(table: table)
        try attributes.validate()
        if let limit, limit < 1 { throw AWSClientError.invalidArgument("Limit must be at least 1, not \(limit)") }
        struct Input: Encodable {
            var TableName: String, IndexName: String?, KeyConditionExpression: String, FilterExpression: String?
            var ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: [String: AttributeValue]?
            var Limit: Int?, ScanIndexForward: Bool?, ConsistentRead: Bool?, ExclusiveStartKey: [String: AttributeValue]?
        }
        struct Output: Decodable {
            var Items: [[String: AttributeValue]]?, LastEvaluatedKey: [String: AttributeValue]?, Count: Int?, ScannedCount: Int?
        }
        let output = try await call("Query", Input(
            TableName: table, IndexName: index, KeyConditionExpression: keyCondition, FilterExpression: filter,
            ExpressionAttributeNames: attributes.names.nonEmpty, ExpressionAttributeValues: attributes.values.nonEmpty, Limit: limit,
            ScanIndexForward: scanIndexForward ? nil : false, ConsistentRead: consistentRead ? true : nil, ExclusiveStartKey: exclusiveStartKey
        ), Output.self)
        return QueryPage(
            items: output.Items ?? [], lastEvaluatedKey: output.LastEvaluatedKey, count: output.Count ?? output.Items?.count ?? 0,
            scannedCount: output.ScannedCount ?? 0
        )
    }

    /// Creates a table with a string partition key and optional string sort key, on demand (for set-up scripts and tests).
    public func createTable(_ table: String, partitionKey: String, sortKey: String? = nil) async throws {
        try Self.validate(table: table)
        struct Definition: Encodable { var AttributeName: String, AttributeType: String }
        struct KeyElement: Encodable { var AttributeName: String, KeyType: String }
        struct Input: Encodable {
            var TableName: String, AttributeDefinitions: [Definition], KeySchema: [KeyElement], BillingMode: String
        }
        var definitions = [Definition(AttributeName: partitionKey, AttributeType: "S")]
        var schema = [KeyElement(AttributeName: partitionKey, KeyType: "HASH")]
        if let sortKey {
            definitions.append(Definition(AttributeName: sortKey, AttributeType: "S"))
            schema.append(KeyElement(AttributeName: sortKey, KeyType: "RANGE"))
        }
        _ = try await call("CreateTable", Input(TableName: table, AttributeDefinitions: definitions, KeySchema: schema, BillingMode: "PAY_PER_REQUEST"), EmptyOutput.self)
    }

    private func call<Output: Decodable>(_ operation: String, _ input: some Encodable, _ output: Output.Type) async throws -> Output {
        try await aws.callJSON(.dynamoDB, target: "DynamoDB_20120810.\(operation)", input: input, as: output)
    }

    static func validate(table: String) throws(AWSClientError) {
        guard (3...255).contains(table.count), table.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0)) }) else {
            throw .invalidArgument("invalid table name \"\(table)\": 3-255 of a-z A-Z 0-9 _ - .")
        }
    }

    static func validate(key: [String: AttributeValue]) throws(AWSClientError) {
        guard (1...2).contains(key.count) else { throw .invalidArgument("a key has its partition key and at most a sort key, not \(key.count) attributes") }
    }
}

extension Dictionary {
    var nonEmpty: Self? { isEmpty ? nil : self }
}

extension AWSServiceError {
    /// A `ConditionExpression` that did not hold.
    public var isConditionalCheckFailed: Bool { code == "ConditionalCheckFailedException" }
}
