#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One write of a DynamoDB transaction (`TransactWriteItems`).
public enum TransactionWrite: Sendable, Hashable {
    /// Writes `item`, when `condition` holds.
    case put(table: String, item: [String: AttributeValue], condition: String? = nil, attributes: ExpressionAttributes = .init())
    /// Updates the item at `key`, when `condition` holds.
    case update(table: String, key: [String: AttributeValue], update: String, condition: String? = nil, attributes: ExpressionAttributes = .init())
    /// Deletes the item at `key`, when `condition` holds.
    case delete(table: String, key: [String: AttributeValue], condition: String? = nil, attributes: ExpressionAttributes = .init())
    /// Writes nothing, but the transaction happens only if `condition` holds for the item at `key`.
    case conditionCheck(table: String, key: [String: AttributeValue], condition: String, attributes: ExpressionAttributes = .init())
}

/// Why one write of a cancelled transaction was not made; `code` is `None` for the writes that were fine.
public struct CancellationReason: Sendable, Hashable, Decodable {
    public var code: String
    public var message: String?

    enum CodingKeys: String, CodingKey {
        case code = "Code"
        case message = "Message"
    }

    public init(code: String, message: String? = nil) {
        self.code = code
        self.message = message
    }
}

extension DynamoDBClient {
    /// DynamoDB's limit on the writes of one transaction.
    public static let maxTransactionWrites = 100

    /// Makes every write, or (when a condition fails) none: a failure throws ``AWSServiceError``
    /// with code `TransactionCanceledException`, whose ``AWSServiceError/cancellationReasons`` say
    /// which write it was. `clientRequestToken` makes the call idempotent for ten minutes; one is
    /// made up when none is given, so a retried request is never applied twice.
    public func transactWriteItems(_ writes: [TransactionWrite], clientRequestToken: String? = nil) async throws {
        guard (1...Self.maxTransactionWrites).contains(writes.count) else {
            throw AWSClientError.invalidArgument("a transaction has 1 to \(Self.maxTransactionWrites) writes, not \(writes.count)")
        }
        var entries: [[String: [String: AttributeValueJSON.Member]]] = []
        entries.reserveCapacity(writes.count)
        for write in writes {
            var members: [String: AttributeValueJSON.Member] = [:]
            let action: String
            let attributes: ExpressionAttributes
            switch write {
            case .put(let table, let item, let condition, let given):
                try Self.validate(table: table)
                guard !item.isEmpty else { throw AWSClientError.invalidArgument("an item needs at least its key attributes") }
                (action, attributes) = ("Put", given)
                members = ["TableName": .string(table), "Item": .item(item)]
                if let condition { members["ConditionExpression"] = .string(condition) }
            case .update(let table, let key, let update, let condition, let given):
                try Self.validate(table: table)
                try Self.validate(key: key)
                guard !update.isEmpty else { throw AWSClientError.invalidArgument("an update expression must not be empty") }
                (action, attributes) = ("Update", given)
                members = ["TableName": .string(table), "Key": .item(key), "UpdateExpression": .string(update)]
                if let condition { members["ConditionExpression"] = .string(condition) }
            case .delete(let table, let key, let condition, let given):
                try Self.validate(table: table)
                try Self.validate(key: key)
                (action, attributes) = ("Delete", given)
                members = ["TableName": .string(table), "Key": .item(key)]
                if let condition { members["ConditionExpression"] = .string(condition) }
            case .conditionCheck(let table, let key, let condition, let given):
                try Self.validate(table: table)
                try Self.validate(key: key)
                (action, attributes) = ("ConditionCheck", given)
                members = ["TableName": .string(table), "Key": .item(key), "ConditionExpression": .string(condition)]
            }
            try attributes.validate()
            if !attributes.names.isEmpty { members["ExpressionAttributeNames"] = .strings(attributes.names) }
            if !attributes.values.isEmpty { members["ExpressionAttributeValues"] = .item(attributes.values) }
            entries.append([action: members])
        }
        let request = AttributeValueJSON.encodeMembers([
            ("TransactItems", .transactItems(entries)), ("ClientRequestToken", .string(clientRequestToken ?? RandomUUID.lowercased())),
        ])
        _ = try await aws.callJSON(.dynamoDB, target: "DynamoDB_20120810.TransactWriteItems", bytes: request)
    }
}

extension AWSServiceError {
    /// A transaction that was cancelled: see ``cancellationReasons``.
    public var isTransactionCanceled: Bool { code == "TransactionCanceledException" }

    /// The reason for each write of a cancelled transaction, in the order of the writes (empty for other errors).
    public var cancellationReasons: [CancellationReason] {
        struct Body: Decodable { var CancellationReasons: [CancellationReason]? }
        guard isTransactionCanceled else { return [] }
        return (try? JSONDecoder().decode(Body.self, from: Data(body)))?.CancellationReasons ?? []
    }
}
