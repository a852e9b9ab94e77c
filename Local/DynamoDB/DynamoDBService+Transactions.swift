import Foundation
import MartletAWS
import NIOCore
import Synchronization

/// `TransactWriteItems`: up to 100 puts, updates, deletes and condition checks on distinct items,
/// applied all together or not at all. Every condition is checked against the items as they were
/// before the transaction; one that fails cancels it with `TransactionCanceledException`, whose
/// `CancellationReasons` say, action by action, what happened.
extension DynamoDBService {
    struct TransactWriteItemsInput: Decodable, Equatable {
        var TransactItems: [TransactWriteItem]
        var ClientRequestToken: String?
        var ReturnConsumedCapacity: String?
        var ReturnItemCollectionMetrics: String?
    }

    struct TransactWriteItem: Decodable, Equatable {
        var ConditionCheck: ConditionCheckInput?
        var Put: PutItemInput?
        var Delete: DeleteItemInput?
        var Update: UpdateItemInput?
    }

    struct ConditionCheckInput: Decodable, Equatable {
        var TableName: String, Key: [String: AttributeValue], ConditionExpression: String
        var ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: [String: AttributeValue]?
        var ReturnValuesOnConditionCheckFailure: String?
    }

    struct EmptyOutput: Encodable {}

    /// DynamoDB's limits on one transaction.
    static let maxTransactionActions = 100
    static let maxTransactionSize = 4 * 1024 * 1024

    /// One action, parsed and checked before any item is read.
    private struct Action {
        enum Change {
            case put([String: AttributeValue])
            case update(UpdateExpression?)
            case delete
            case check
        }

        var table: String
        /// The `Item` of a put, the `Key` of the others.
        var keySource: [String: AttributeValue]
        var condition: ConditionExpression?
        var returnOldOnFailure: Bool
        var change: Change

        var exactKey: Bool {
            if case .put = change { return false }
            return true
        }
    }

    func transactWriteItems(_ input: TransactWriteItemsInput, request: [UInt8]) throws -> EmptyOutput {
        guard !input.TransactItems.isEmpty else {
            throw Self.validation("1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1")
        }
        guard input.TransactItems.count <= Self.maxTransactionActions else {
            throw Self.validation("1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100")
        }
        if let token = input.ClientRequestToken, !(1...36).contains(token.count) {
            throw Self.validation("1 validation error detected: Value '\(token)' at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36")
        }
        let actions = try input.TransactItems.map(Self.action)
        if let token = input.ClientRequestToken, try transactionTokens.alreadyApplied(token, request: request, input: input) { return EmptyOutput() }
        try database.write { db in
            var tables: [String: TableDefinition] = [:]
            var targets = Set<String>()
            var writes: [(table: TableDefinition, key: (pk: String, sk: String), item: [String: AttributeValue]?)] = []
            var reasons: [CancellationReason] = []
            var size = 0
            for action in actions {
                let table = try tables[action.table] ?? Self.loadTable(action.table, db)
                tables[action.table] = table
                let key = try Self.key(of: action.keySource, table: table, exact: action.exactKey)
                guard targets.insert("\(table.name)\u{0}\(key.pk)\u{0}\(key.sk)").inserted else {
                    throw Self.validation("Transaction request cannot include multiple operations on one item")
                }
                let old = try Self.load(table.name, key, db)
                if let condition = action.condition, try !condition.evaluate(old) {
                    reasons.append(CancellationReason(code: "ConditionalCheckFailed", message: "The conditional request failed", item: action.returnOldOnFailure ? old : nil))
                    continue
                }
                do {
                    func write(_ item: [String: AttributeValue]) throws {
                        let itemSize = AttributeValueJSON.encode(item).count
                        guard itemSize <= Self.maxItemSize else { throw Self.validation("Item size has exceeded the maximum allowed size") }
                        writes.append((table, key, item))
                        size += itemSize
                    }
                    switch action.change {
                    case .put(let item):
                        try write(item)
                    case .update(let update):
                        try write(try Self.updated(old, key: action.keySource, update: update, table: table))
                    case .delete:
                        writes.append((table, key, nil))
                    case .check:
                        break
                    }
                    reasons.append(CancellationReason(code: "None"))
                } catch let error as JSONProtocolError where error.code == "ValidationException" {
                    reasons.append(CancellationReason(code: "ValidationError", message: error.message))
                } catch let error as ExpressionError {
                    reasons.append(CancellationReason(code: "ValidationError", message: error.message))
                }
            }
            if reasons.contains(where: { $0.Code != "None" }) { throw TransactionCanceled(reasons: reasons) }
            guard size <= Self.maxTransactionSize else {
                throw Self.validation("Transaction size has exceeded the maximum allowed size of 4 MB")
            }
            for write in writes {
                if let item = write.item {
                    try store(item, table: write.table, key: write.key, db)
                } else {
                    try db.run("DELETE FROM ddb_items WHERE tbl = ? AND pk = ? AND sk = ?", [.text(write.table.name), .text(write.key.pk), .text(write.key.sk)])
                }
            }
        }
        if let token = input.ClientRequestToken { transactionTokens.remember(token, request: request) }
        return EmptyOutput()
    }

    /// Parses one `TransactItems` entry: exactly one action, with valid expressions that use every
    /// name and value they are given.
    private static func action(_ entry: TransactWriteItem) throws -> Action {
        let given = [entry.ConditionCheck != nil, entry.Put != nil, entry.Delete != nil, entry.Update != nil].filter { $0 }.count
        guard given == 1 else { throw validation("TransactItems can only contain one of Check, Put, Update or Delete") }
        func parse(
            _ condition: String?, update: String? = nil, names: [String: String]?, values: [String: AttributeValue]?
        ) throws -> (ConditionExpression?, UpdateExpression?) {
            let names = names ?? [:], values = values ?? [:]
            try DynamoDBExpressions.checkAllUsed(names: names, values: values, expressions: [condition, update])
            return (
                try condition.map { text throws(ExpressionError) in try ConditionExpression(text, names: names, values: values) },
                try update.map { text throws(ExpressionError) in try UpdateExpression(text, names: names, values: values) }
            )
        }
        if let put = entry.Put {
            try validateItem(put.Item)
            let (condition, _) = try parse(put.ConditionExpression, names: put.ExpressionAttributeNames, values: put.ExpressionAttributeValues)
            return Action(
                table: put.TableName, keySource: put.Item, condition: condition, returnOldOnFailure: put.ReturnValuesOnConditionCheckFailure == "ALL_OLD",
                change: .put(put.Item)
            )
        }
        if let update = entry.Update {
            let (condition, expression) = try parse(
                update.ConditionExpression, update: update.UpdateExpression, names: update.ExpressionAttributeNames, values: update.ExpressionAttributeValues
            )
            return Action(
                table: update.TableName, keySource: update.Key, condition: condition,
                returnOldOnFailure: update.ReturnValuesOnConditionCheckFailure == "ALL_OLD", change: .update(expression)
            )
        }
        if let delete = entry.Delete {
            let (condition, _) = try parse(delete.ConditionExpression, names: delete.ExpressionAttributeNames, values: delete.ExpressionAttributeValues)
            return Action(
                table: delete.TableName, keySource: delete.Key, condition: condition,
                returnOldOnFailure: delete.ReturnValuesOnConditionCheckFailure == "ALL_OLD", change: .delete
            )
        }
        let check = entry.ConditionCheck!
        let (condition, _) = try parse(check.ConditionExpression, names: check.ExpressionAttributeNames, values: check.ExpressionAttributeValues)
        return Action(
            table: check.TableName, keySource: check.Key, condition: condition, returnOldOnFailure: check.ReturnValuesOnConditionCheckFailure == "ALL_OLD",
            change: .check
        )
    }

    /// What one action of a cancelled transaction ran into (`None` when it was fine).
    struct CancellationReason: Encodable {
        var Code: String
        var Message: String?
        var Item: [String: AttributeValue]?

        init(code: String, message: String? = nil, item: [String: AttributeValue]? = nil) {
            Code = code
            Message = message
            Item = item
        }
    }

    /// `TransactionCanceledException`, with a reason for each action in the order they were given.
    struct TransactionCanceled: Error {
        var reasons: [CancellationReason]

        var body: [UInt8] {
            struct Body: Encodable { var __type: String, Message: String, CancellationReasons: [CancellationReason] }
            let message = "Transaction cancelled, please refer cancellation reasons for specific reasons [\(reasons.map(\.Code).joined(separator: ", "))]"
            let body = Body(__type: "com.amazonaws.dynamodb.v20120810#TransactionCanceledException", Message: message, CancellationReasons: reasons)
            return Array((try? JSONEncoder().encode(body)) ?? Data())
        }
    }
}

/// The client tokens of transactions applied in the last 10 minutes (DynamoDB's idempotency
/// window): the same token with the same request succeeds again without applying it twice; with
/// another request it is refused. The requests are kept (as sent, up to 32 MB of them, the oldest
/// forgotten first), so at very high rates the window is shorter than 10 minutes.
final class TransactionTokens: Sendable {
    static let window: Double = 600
    static let capacity = 32 * 1024 * 1024

    private struct State {
        var requests: [String: (request: [UInt8], at: Double)] = [:]
        var order = CircularBuffer<String>()
        var bytes = 0
    }

    private let state = Mutex(State())

    /// Whether `token` was applied within the window; refused when it was, for another request.
    func alreadyApplied(
        _ token: String, request: [UInt8], input: DynamoDBService.TransactWriteItemsInput, now: Double = Date().timeIntervalSince1970
    ) throws(JSONProtocolError) -> Bool {
        guard let seen = state.withLock({ $0.requests[token] }), now - seen.at < Self.window else { return false }
        // The same request, possibly with its members in another order.
        if seen.request == request { return true }
        if let earlier = try? JSONDecoder().decode(DynamoDBService.TransactWriteItemsInput.self, from: Data(seen.request)), earlier == input { return true }
        throw JSONProtocolError(
            type: "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            message: "DynamoDB rejected the request because you retried a request with a different payload but with an idempotent token that was already used."
        )
    }

    func remember(_ token: String, request: [UInt8], now: Double = Date().timeIntervalSince1970) {
        state.withLock { state in
            if let old = state.requests.updateValue((request, now), forKey: token) {
                state.bytes -= old.request.count
            } else {
                state.order.append(token)
            }
            state.bytes += request.count
            while state.bytes > Self.capacity || state.order.count > 1 && now - (state.requests[state.order.first!]?.at ?? 0) >= Self.window,
                let oldest = state.order.popFirst()
            {
                if let removed = state.requests.removeValue(forKey: oldest) { state.bytes -= removed.request.count }
            }
        }
    }
}
