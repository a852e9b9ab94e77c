import Foundation
import MartletAWS
import NIOCore
import NIOHTTP1
import Synchronization

/// Amazon DynamoDB (JSON protocol) on the local endpoint, durable in SQLite: tables with a partition
/// key and an optional sort key, conditional writes, update expressions, queries with pagination,
/// `ReturnValues`, and TTL honoured by ``sweepExpiredItems(now:)``.
public final class DynamoDBService: Sendable {
    static let account = "000000000000"
    /// DynamoDB's item size limit.
    static let maxItemSize = 400 * 1024

    let database: SQLiteDatabase
    let region: String
    let transactionTokens = TransactionTokens()

    public init(database: SQLiteDatabase, region: String = "us-east-1") throws {
        self.database = database
        self.region = region
        try database.write { db in
            try db.execute("""
                CREATE TABLE IF NOT EXISTS ddb_tables(name TEXT PRIMARY KEY, definition TEXT NOT NULL, ttl_attribute TEXT, created REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS ddb_items(
                    tbl TEXT NOT NULL, pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL, expires INTEGER,
                    PRIMARY KEY (tbl, pk, sk));
                CREATE INDEX IF NOT EXISTS ddb_items_expiry ON ddb_items(expires) WHERE expires IS NOT NULL;
                """)
        }
    }

    /// Answers one `DynamoDB_20120810.<operation>` call.
    public func handle(operation: String, body: ByteBuffer, requestID: String) async -> HTTPServerResponse {
        let data = Data(body.readableBytesView)
        do {
            let output: any Encodable
            switch operation {
            case "CreateTable": output = try createTable(decode(data))
            case "DescribeTable": output = try describeTable(decode(data))
            case "DeleteTable": output = try deleteTable(decode(data))
            case "ListTables": output = try listTables()
            case "UpdateTimeToLive": output = try updateTimeToLive(decode(data))
            case "DescribeTimeToLive": output = try describeTimeToLive(decode(data))
            case "PutItem": output = try putItem(decode(data))
            case "GetItem": output = try getItem(decode(data))
            case "UpdateItem": output = try updateItem(decode(data))
            case "DeleteItem": output = try deleteItem(decode(data))
            case "Query": output = try query(decode(data))
            case "Scan": output = try scan(decode(data))
            case "TransactWriteItems": output = try transactWriteItems(decode(data), request: Array(body.readableBytesView))
            default:
                throw JSONProtocolError(type: "com.amazon.coral.service#UnknownOperationException", message: "Operation \(operation) is not supported.")
            }
            let body: ByteBuffer
            if let fast = output as? any MembersEncodable {
                body = ByteBuffer(bytes: AttributeValueJSON.encodeMembers(fast.members))
            } else {
                body = ByteBuffer(bytes: try JSONEncoder().encode(output))
            }
            return HTTPServerResponse(status: .ok, headers: ["x-amzn-RequestId": requestID, "Content-Type": "application/x-amz-json-1.0"], body: body)
        } catch let error as JSONProtocolError {
            return error.response(requestID: requestID)
        } catch let failed as ConditionalCheckFailedWithItem {
            struct Body: Encodable { var __type: String; var message: String; var Item: [String: AttributeValue] }
            let body = Body(__type: "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", message: "The conditional request failed", Item: failed.item)
            return HTTPServerResponse(
                status: .badRequest, headers: ["x-amzn-RequestId": requestID, "Content-Type": "application/x-amz-json-1.0"],
                body: ByteBuffer(bytes: (try? JSONEncoder().encode(body)) ?? Data())
            )
        } catch let cancelled as TransactionCanceled {
            return HTTPServerResponse(
                status: .badRequest, headers: ["x-amzn-RequestId": requestID, "Content-Type": "application/x-amz-json-1.0"], body: ByteBuffer(bytes: cancelled.body)
            )
        } catch let error as ExpressionError {
            return Self.validation(error.message).response(requestID: requestID)
        } catch {
            return JSONProtocolError(status: .internalServerError, type: "com.amazonaws.dynamodb.v20120810#InternalServerError", message: "\(error)").response(requestID: requestID)
        }
    }

    private func decode<T: Decodable>(_ data: Data) throws -> T {
        if data.isEmpty { throw JSONProtocolError.serialization("The request body is empty") }
        if let fast = T.self as? any MembersDecodable.Type, let members = AttributeValueJSON.decodeMembers(data), let input = fast.init(members: members) {
            return input as! T
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch DecodingError.keyNotFound(let key, _) {
            throw Self.validation("1 validation error detected: Value null at '\(key.stringValue)' failed to satisfy constraint: Member must not be null")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            throw JSONProtocolError.serialization("Unexpected value at \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)")
        } catch {
            throw JSONProtocolError.serialization("The request body is not valid JSON: \(error)")
        }
    }

    // MARK: Errors

    static func validation(_ message: String) -> JSONProtocolError {
        JSONProtocolError(type: "com.amazon.coral.validate#ValidationException", message: message)
    }
    static let tableNotFound = JSONProtocolError(type: "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", message: "Requested resource not found")
    static func conditionFailed(_ old: [String: AttributeValue]?, returnOld: Bool) -> ConditionalCheckFailed {
        ConditionalCheckFailed(item: returnOld ? old : nil)
    }

    /// `ConditionalCheckFailedException`, with the old item when `ReturnValuesOnConditionCheckFailure` is `ALL_OLD`.
    struct ConditionalCheckFailed: Error {
        var item: [String: AttributeValue]?

        var error: JSONProtocolError {
            JSONProtocolError(type: "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", message: "The conditional request failed")
        }
    }

    // MARK: Tables

    struct KeyElement: Codable, Hashable, Sendable { var AttributeName: String; var KeyType: String }
    struct AttributeDefinition: Codable, Hashable, Sendable { var AttributeName: String; var AttributeType: String }

    struct TableDefinition: Codable, Sendable {
        var name: String
        var keySchema: [KeyElement]
        var attributeDefinitions: [AttributeDefinition]
        var billingMode: String
        var created: Double

        var partitionKey: String { keySchema.first { $0.KeyType == "HASH" }!.AttributeName }
        var sortKey: String? { keySchema.first { $0.KeyType == "RANGE" }?.AttributeName }
        func type(of attribute: String) -> String { attributeDefinitions.first { $0.AttributeName == attribute }?.AttributeType ?? "S" }
    }

    struct TableDescription: Encodable {
        var TableName: String, TableStatus = "ACTIVE", KeySchema: [KeyElement], AttributeDefinitions: [AttributeDefinition]
        var CreationDateTime: Double, ItemCount: Int, TableSizeBytes: Int, TableArn: String, TableId: String
        var BillingModeSummary: [String: String]
    }

    func describe(_ table: TableDefinition, _ db: SQLiteDatabase.Connection) throws -> TableDescription {
        let stats = try db.query("SELECT COUNT(*), COALESCE(SUM(LENGTH(item)), 0) FROM ddb_items WHERE tbl = ?", [.text(table.name)])[0]
        return TableDescription(
            TableName: table.name, KeySchema: table.keySchema, AttributeDefinitions: table.attributeDefinitions, CreationDateTime: table.created,
            ItemCount: Int(stats[0].integer ?? 0), TableSizeBytes: Int(stats[1].integer ?? 0),
            TableArn: "arn:aws:dynamodb:\(region):\(Self.account):table/\(table.name)", TableId: table.name,
            BillingModeSummary: ["BillingMode": table.billingMode]
        )
    }

    static func loadTable(_ name: String, _ db: SQLiteDatabase.Connection) throws -> TableDefinition {
        guard let row = try db.query("SELECT definition FROM ddb_tables WHERE name = ?", [.text(name)]).first, let text = row[0].text else {
            throw tableNotFound
        }
        if let cached = definitions.withLock({ $0[text] }) { return cached }
        let definition = try JSONDecoder().decode(TableDefinition.self, from: Data(text.utf8))
        definitions.withLock { cache in
            if cache.count > 1000 { cache.removeAll() }
            cache[text] = definition
        }
        return definition
    }

    /// Decoded table definitions by their stored text: every item operation reads its table's.
    private static let definitions = Mutex<[String: TableDefinition]>([:])

    static func validateTableName(_ name: String) throws(JSONProtocolError) {
        guard (3...255).contains(name.count), name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0)) }) else {
            throw validation("1 validation error detected: Value '\(name)' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
        }
    }

    struct CreateTableInput: Decodable {
        var TableName: String, KeySchema: [KeyElement], AttributeDefinitions: [AttributeDefinition], BillingMode: String?
    }

    func createTable(_ input: CreateTableInput) throws -> [String: TableDescription] {
        try Self.validateTableName(input.TableName)
        let hashes = input.KeySchema.filter { $0.KeyType == "HASH" }, ranges = input.KeySchema.filter { $0.KeyType == "RANGE" }
        guard hashes.count == 1, ranges.count <= 1, input.KeySchema.count == hashes.count + ranges.count else {
            throw Self.validation("1 validation error detected: Value at 'keySchema' failed to satisfy constraint: a key schema has one HASH and at most one RANGE element")
        }
        for key in input.KeySchema {
            guard let definition = input.AttributeDefinitions.first(where: { $0.AttributeName == key.AttributeName }) else {
                throw Self.validation("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [\(key.AttributeName)], AttributeDefinitions: [\(input.AttributeDefinitions.map(\.AttributeName).joined(separator: ", "))]")
            }
            guard ["S", "N", "B"].contains(definition.AttributeType) else {
                throw Self.validation("1 validation error detected: Value '\(definition.AttributeType)' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]")
            }
        }
        let definition = TableDefinition(
            name: input.TableName, keySchema: input.KeySchema, attributeDefinitions: input.AttributeDefinitions,
            billingMode: input.BillingMode ?? "PROVISIONED", created: Date().timeIntervalSince1970
        )
        return try database.write { db in
            if try !db.query("SELECT 1 FROM ddb_tables WHERE name = ?", [.text(input.TableName)]).isEmpty {
                throw JSONProtocolError(type: "com.amazonaws.dynamodb.v20120810#ResourceInUseException", message: "Table already exists: \(input.TableName)")
            }
            let encoded = String(decoding: try JSONEncoder().encode(definition), as: UTF8.self)
            try db.run("INSERT INTO ddb_tables(name, definition, created) VALUES (?, ?, ?)", [.text(input.TableName), .text(encoded), .real(definition.created)])
            return ["TableDescription": try describe(definition, db)]
        }
    }

    struct TableNameInput: Decodable { var TableName: String }

    func describeTable(_ input: TableNameInput) throws -> [String: TableDescription] {
        try database.read { db in ["Table": try describe(try Self.loadTable(input.TableName, db), db)] }
    }

    func deleteTable(_ input: TableNameInput) throws -> [String: TableDescription] {
        try database.write { db in
            let table = try Self.loadTable(input.TableName, db)
            var description = try describe(table, db)
            description.TableStatus = "DELETING"
            try db.run("DELETE FROM ddb_items WHERE tbl = ?", [.text(table.name)])
            try db.run("DELETE FROM ddb_tables WHERE name = ?", [.text(table.name)])
            return ["TableDescription": description]
        }
    }

    func listTables() throws -> [String: [String]] {
        ["TableNames": try database.read { db in try db.query("SELECT name FROM ddb_tables ORDER BY name", []).compactMap { $0[0].text } }]
    }

    struct TimeToLiveInput: Decodable {
        struct Specification: Codable { var Enabled: Bool; var AttributeName: String }
        var TableName: String, TimeToLiveSpecification: Specification
    }

    func updateTimeToLive(_ input: TimeToLiveInput) throws -> [String: TimeToLiveInput.Specification] {
        let specification = input.TimeToLiveSpecification
        guard !specification.AttributeName.isEmpty else { throw Self.validation("TimeToLiveSpecification.AttributeName must not be empty") }
        try database.write { db in
            let table = try Self.loadTable(input.TableName, db)
            let current = try db.query("SELECT ttl_attribute FROM ddb_tables WHERE name = ?", [.text(table.name)])[0][0].text
            if specification.Enabled, current != nil {
                throw Self.validation("TimeToLive is already enabled")
            }
            if !specification.Enabled, current == nil {
                throw Self.validation("TimeToLive is already disabled")
            }
            try db.run("UPDATE ddb_tables SET ttl_attribute = ? WHERE name = ?", [specification.Enabled ? .text(specification.AttributeName) : .null, .text(table.name)])
            // Index every item's expiry under the new attribute.
            for row in try db.query("SELECT pk, sk, item FROM ddb_items WHERE tbl = ?", [.text(table.name)]) {
                let item = try AttributeValueJSON.decodeItem((row[2].text ?? "{}").utf8)
                let expires = specification.Enabled ? Self.expiry(of: item, attribute: specification.AttributeName) : nil
                try db.run("UPDATE ddb_items SET expires = ? WHERE tbl = ? AND pk = ? AND sk = ?", [expires.map(SQLiteValue.integer) ?? .null, .text(table.name), row[0], row[1]])
            }
        }
        return ["TimeToLiveSpecification": specification]
    }

    func describeTimeToLive(_ input: TableNameInput) throws -> [String: [String: String]] {
        try database.read { db in
            _ = try Self.loadTable(input.TableName, db)
            let attribute = try db.query("SELECT ttl_attribute FROM ddb_tables WHERE name = ?", [.text(input.TableName)])[0][0].text
            var description = ["TimeToLiveStatus": attribute == nil ? "DISABLED" : "ENABLED"]
            if let attribute { description["AttributeName"] = attribute }
            return ["TimeToLiveDescription": description]
        }
    }

    /// The epoch second an item expires at: its TTL attribute when that is a number.
    static func expiry(of item: [String: AttributeValue], attribute: String?) -> Int64? {
        guard let attribute, case .n(let text)? = item[attribute], let seconds = Double(text) else { return nil }
        return Int64(seconds)
    }

    /// Deletes items whose TTL has passed; returns how many. The endpoint runs this every second.
    @discardableResult
    public func sweepExpiredItems(now: Int64 = Int64(Date().timeIntervalSince1970)) throws -> Int {
        try database.write { db in try db.run("DELETE FROM ddb_items WHERE expires IS NOT NULL AND expires < ?", [.integer(now)]) }
    }

    // MARK: Keys and items

    /// The stored form of a key attribute: its type and canonical value.
    static func keyText(_ value: AttributeValue) -> String? {
        switch value {
        case .s(let text): "S:" + text
        case .n(let number): "N:" + ((try? DynamoDBNumber(number).description) ?? number)
        case .b(let bytes): "B:" + Base64.encode(bytes)
        default: nil
        }
    }

    /// The key of an item or a `Key` argument, checked against the schema.
    static func key(of item: [String: AttributeValue], table: TableDefinition, exact: Bool) throws(JSONProtocolError) -> (pk: String, sk: String) {
        if exact, item.count != table.keySchema.count {
            throw validation("The provided key element does not match the schema")
        }
        func part(_ name: String) throws(JSONProtocolError) -> String {
            guard let value = item[name] else {
                throw validation(exact ? "The provided key element does not match the schema" : "One or more parameter values were invalid: Missing the key \(name) in the item")
            }
            let expected = table.type(of: name)
            guard let text = keyText(value), text.hasPrefix(expected + ":") else {
                throw validation("One or more parameter values were invalid: Type mismatch for key \(name) expected: \(expected) actual: \(typeName(value))")
            }
            if case .s(let string) = value, string.isEmpty {
                throw validation("One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: \(name)")
            }
            return text
        }
        return (try part(table.partitionKey), try table.sortKey.map { name throws(JSONProtocolError) in try part(name) } ?? "")
    }

    static func typeName(_ value: AttributeValue) -> String { value.typeName }

    static func load(_ table: String, _ key: (pk: String, sk: String), _ db: SQLiteDatabase.Connection) throws -> [String: AttributeValue]? {
        guard let row = try db.query("SELECT item FROM ddb_items WHERE tbl = ? AND pk = ? AND sk = ?", [.text(table), .text(key.pk), .text(key.sk)]).first else { return nil }
        return try AttributeValueJSON.decodeItem((row[0].text ?? "{}").utf8)
    }

    func store(_ item: [String: AttributeValue], table: TableDefinition, key: (pk: String, sk: String), _ db: SQLiteDatabase.Connection) throws {
        let encoded = AttributeValueJSON.encode(item)
        guard encoded.count <= Self.maxItemSize else { throw Self.validation("Item size has exceeded the maximum allowed size") }
        let ttl = try db.query("SELECT ttl_attribute FROM ddb_tables WHERE name = ?", [.text(table.name)])[0][0].text
        try db.run(
            "INSERT OR REPLACE INTO ddb_items(tbl, pk, sk, item, expires) VALUES (?, ?, ?, ?, ?)",
            [.text(table.name), .text(key.pk), .text(key.sk), .text(String(decoding: encoded, as: UTF8.self)), Self.expiry(of: item, attribute: ttl).map(SQLiteValue.integer) ?? .null]
        )
    }

    static func validateItem(_ item: [String: AttributeValue]) throws(JSONProtocolError) {
        for (name, value) in item {
            switch value {
            case .ss(let set) where set.isEmpty, .ns(let set) where set.isEmpty:
                throw validation("One or more parameter values were invalid: An string set  may not be empty for attribute \(name)")
            case .bs(let set) where set.isEmpty:
                throw validation("One or more parameter values were invalid: An binary set  may not be empty for attribute \(name)")
            case .ss(let set) where Set(set).count != set.count:
                throw validation("One or more parameter values were invalid: Input collection \(set) contains duplicates.")
            case .n(let number):
                do { _ = try DynamoDBNumber(number) } catch { throw validation(error.message) }
            default: break
            }
        }
    }

    // MARK: Writes

    struct PutItemInput: Decodable, Equatable {
        var TableName: String, Item: [String: AttributeValue], ConditionExpression: String?
        var ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: [String: AttributeValue]?
        var ReturnValues: String?, ReturnValuesOnConditionCheckFailure: String?
    }

    struct AttributesOutput: Encodable { var Attributes: [String: AttributeValue]? }

    func putItem(_ input: PutItemInput) throws -> AttributesOutput {
        guard ["NONE", "ALL_OLD"].contains(input.ReturnValues ?? "NONE") else {
            throw Self.validation("ReturnValues can only be ALL_OLD or NONE")
        }
        try Self.validateItem(input.Item)
        let names = input.ExpressionAttributeNames ?? [:], values = input.ExpressionAttributeValues ?? [:]
        try DynamoDBExpressions.checkAllUsed(names: names, values: values, expressions: [input.ConditionExpression])
        let condition = try input.ConditionExpression.map { text throws(ExpressionError) in try ConditionExpression(text, names: names, values: values) }
        return try conditionalWrite(
            table: input.TableName, key: { table in try Self.key(of: input.Item, table: table, exact: false) }, condition: condition,
            returnOldOnFailure: input.ReturnValuesOnConditionCheckFailure == "ALL_OLD"
        ) { table, key, old, db in
            try store(input.Item, table: table, key: key, db)
            return AttributesOutput(Attributes: input.ReturnValues == "ALL_OLD" ? old : nil)
        }
    }

    struct KeyInput: Decodable {
        var TableName: String, Key: [String: AttributeValue], ConsistentRead: Bool?, ProjectionExpression: String?
        var ExpressionAttributeNames: [String: String]?
    }

    struct ItemOutput: Encodable { var Item: [String: AttributeValue]? }

    func getItem(_ input: KeyInput) throws -> ItemOutput {
        let names = input.ExpressionAttributeNames ?? [:]
        try DynamoDBExpressions.checkAllUsed(names: names, values: [:], expressions: [input.ProjectionExpression])
        let projection = try input.ProjectionExpression.map { text throws(ExpressionError) in try ProjectionExpression(text, names: names) }
        return try database.read { db in
            let table = try Self.loadTable(input.TableName, db)
            let item = try Self.load(table.name, try Self.key(of: input.Key, table: table, exact: true), db)
            return ItemOutput(Item: item.map { projection?.apply($0) ?? $0 })
        }
    }

    struct UpdateItemInput: Decodable, Equatable {
        var TableName: String, Key: [String: AttributeValue], UpdateExpression: String?, ConditionExpression: String?
        var ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: [String: AttributeValue]?
        var ReturnValues: String?, ReturnValuesOnConditionCheckFailure: String?
    }

    func updateItem(_ input: UpdateItemInput) throws -> AttributesOutput {
        let returnValues = input.ReturnValues ?? "NONE"
        guard ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"].contains(returnValues) else {
            throw Self.validation("1 validation error detected: Value '\(returnValues)' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]")
        }
        let names = input.ExpressionAttributeNames ?? [:], values = input.ExpressionAttributeValues ?? [:]
        try DynamoDBExpressions.checkAllUsed(names: names, values: values, expressions: [input.UpdateExpression, input.ConditionExpression])
        let update = try input.UpdateExpression.map { text throws(ExpressionError) in try UpdateExpression(text, names: names, values: values) }
        let condition = try input.ConditionExpression.map { text throws(ExpressionError) in try ConditionExpression(text, names: names, values: values) }
        return try conditionalWrite(
            table: input.TableName, key: { table in try Self.key(of: input.Key, table: table, exact: true) }, condition: condition,
            returnOldOnFailure: input.ReturnValuesOnConditionCheckFailure == "ALL_OLD"
        ) { table, key, old, db in
            let item = try Self.updated(old, key: input.Key, update: update, table: table)
            try store(item, table: table, key: key, db)
            let updated = update?.updatedTopLevelNames ?? []
            switch returnValues {
            case "ALL_OLD": return AttributesOutput(Attributes: old)
            case "ALL_NEW": return AttributesOutput(Attributes: item)
            case "UPDATED_OLD": return AttributesOutput(Attributes: (old ?? [:]).filter { updated.contains($0.key) }.nilIfEmpty)
            case "UPDATED_NEW": return AttributesOutput(Attributes: item.filter { updated.contains($0.key) }.nilIfEmpty)
            default: return AttributesOutput(Attributes: nil)
            }
        }
    }

    /// The item an update makes of `old` (or of its key alone, when there is no item yet).
    static func updated(
        _ old: [String: AttributeValue]?, key: [String: AttributeValue], update: UpdateExpression?, table: TableDefinition
    ) throws -> [String: AttributeValue] {
        var item = old ?? key
        if let update {
            try update.apply(to: &item)
            for keyName in table.keySchema.map(\.AttributeName) where item[keyName] != key[keyName] {
                throw validation("One or more parameter values were invalid: Cannot update attribute \(keyName). This attribute is part of the key")
            }
        }
        try validateItem(item)
        return item
    }

    struct DeleteItemInput: Decodable, Equatable {
        var TableName: String, Key: [String: AttributeValue], ConditionExpression: String?
        var ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: [String: AttributeValue]?
        var ReturnValues: String?, ReturnValuesOnConditionCheckFailure: String?
    }

    func deleteItem(_ input: DeleteItemInput) throws -> AttributesOutput {
        guard ["NONE", "ALL_OLD"].contains(input.ReturnValues ?? "NONE") else {
            throw Self.validation("ReturnValues can only be ALL_OLD or NONE")
        }
        let names = input.ExpressionAttributeNames ?? [:], values = input.ExpressionAttributeValues ?? [:]
        try DynamoDBExpressions.checkAllUsed(names: names, values: values, expressions: [input.ConditionExpression])
        let condition = try input.ConditionExpression.map { text throws(ExpressionError) in try ConditionExpression(text, names: names, values: values) }
        return try conditionalWrite(
            table: input.TableName, key: { table in try Self.key(of: input.Key, table: table, exact: true) }, condition: condition,
            returnOldOnFailure: input.ReturnValuesOnConditionCheckFailure == "ALL_OLD"
        ) { table, key, old, db in
            try db.run("DELETE FROM ddb_items WHERE tbl = ? AND pk = ? AND sk = ?", [.text(table.name), .text(key.pk), .text(key.sk)])
            return AttributesOutput(Attributes: input.ReturnValues == "ALL_OLD" ? old : nil)
        }
    }

    /// One write transaction: loads the table and the item at `key`, checks `condition` against it,
    /// then runs `body`. A failed condition becomes AWS's error (with the old item when asked).
    private func conditionalWrite<T>(
        table name: String, key: (TableDefinition) throws -> (pk: String, sk: String), condition: ConditionExpression?, returnOldOnFailure: Bool,
        _ body: (TableDefinition, (pk: String, sk: String), [String: AttributeValue]?, SQLiteDatabase.Connection) throws -> T
    ) throws -> T {
        do {
            return try database.write { db in
                let table = try Self.loadTable(name, db)
                let key = try key(table)
                let old = try Self.load(table.name, key, db)
                if let condition, try !condition.evaluate(old) { throw Self.conditionFailed(old, returnOld: returnOldOnFailure) }
                return try body(table, key, old, db)
            }
        } catch let failed as ConditionalCheckFailed {
            guard let item = failed.item else { throw failed.error }
            throw ConditionalCheckFailedWithItem(item: item)
        }
    }

    // MARK: Reads of many items

    struct QueryInput: Decodable {
        var TableName: String, IndexName: String?, KeyConditionExpression: String?, FilterExpression: String?, ProjectionExpression: String?
        var ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: [String: AttributeValue]?
        var Limit: Int?, ScanIndexForward: Bool?, ExclusiveStartKey: [String: AttributeValue]?, ConsistentRead: Bool?, Select: String?
    }

    struct PageOutput: Encodable {
        var Items: [[String: AttributeValue]]?
        var Count: Int
        var ScannedCount: Int
        var LastEvaluatedKey: [String: AttributeValue]?
    }

    func query(_ input: QueryInput) throws -> PageOutput {
        guard input.IndexName == nil else { throw Self.validation("The table does not have the specified index: \(input.IndexName!)") }
        guard let keyConditionText = input.KeyConditionExpression else {
            throw Self.validation("Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.")
        }
        let names = input.ExpressionAttributeNames ?? [:], values = input.ExpressionAttributeValues ?? [:]
        try DynamoDBExpressions.checkAllUsed(names: names, values: values, expressions: [keyConditionText, input.FilterExpression, input.ProjectionExpression])
        return try database.read { db in
            let table = try Self.loadTable(input.TableName, db)
            let keyCondition = try KeyCondition(keyConditionText, names: names, values: values, partitionKey: table.partitionKey, sortKey: table.sortKey)
            guard let partition = Self.keyText(keyCondition.partitionValue), partition.hasPrefix(table.type(of: table.partitionKey) + ":") else {
                throw Self.validation("One or more parameter values were invalid: Condition parameter type does not match schema type")
            }
            let rows = try db.query("SELECT item FROM ddb_items WHERE tbl = ? AND pk = ?", [.text(table.name), .text(partition)])
            var items = try rows.map { try AttributeValueJSON.decodeItem(($0[0].text ?? "{}").utf8) }
            if let sortKey = table.sortKey {
                if let sortCondition = keyCondition.sortCondition { items = items.filter { $0[sortKey].map(sortCondition.matches) ?? false } }
                items.sort { left, right in
                    guard let a = left[sortKey], let b = right[sortKey] else { return false }
                    return (SortCondition.compare(a, b) ?? 0) < 0
                }
            }
            if input.ScanIndexForward == false { items.reverse() }
            return try page(items, input: input, table: table, names: names, values: values)
        }
    }

    func scan(_ input: QueryInput) throws -> PageOutput {
        let names = input.ExpressionAttributeNames ?? [:], values = input.ExpressionAttributeValues ?? [:]
        try DynamoDBExpressions.checkAllUsed(names: names, values: values, expressions: [input.FilterExpression, input.ProjectionExpression])
        return try database.read { db in
            let table = try Self.loadTable(input.TableName, db)
            let rows = try db.query("SELECT item FROM ddb_items WHERE tbl = ? ORDER BY pk, sk", [.text(table.name)])
            let items = try rows.map { try AttributeValueJSON.decodeItem(($0[0].text ?? "{}").utf8) }
            return try page(items, input: input, table: table, names: names, values: values)
        }
    }

    /// Applies `ExclusiveStartKey`, `Limit` (items evaluated, before the filter, as DynamoDB counts),
    /// the filter and the projection.
    private func page(
        _ ordered: [[String: AttributeValue]], input: QueryInput, table: TableDefinition, names: [String: String], values: [String: AttributeValue]
    ) throws -> PageOutput {
        if let limit = input.Limit, limit < 1 {
            throw Self.validation("1 validation error detected: Value '\(limit)' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1")
        }
        let filter = try input.FilterExpression.map { text throws(ExpressionError) in try ConditionExpression(text, names: names, values: values) }
        let projection = try input.ProjectionExpression.map { text throws(ExpressionError) in try ProjectionExpression(text, names: names) }
        let keyNames = table.keySchema.map(\.AttributeName)
        var items = ordered[...]
        if let start = input.ExclusiveStartKey {
            let startKey = try Self.key(of: start, table: table, exact: true)
            if let index = items.firstIndex(where: { (try? Self.key(of: $0, table: table, exact: false)).map { $0 == startKey } ?? false }) {
                items = items[(index + 1)...]
            }
        }
        var lastEvaluated: [String: AttributeValue]?
        if let limit = input.Limit, items.count > limit {
            items = items.prefix(limit)
            lastEvaluated = items.last.map { item in item.filter { keyNames.contains($0.key) } }
        }
        let scanned = items.count
        let matching = try items.filter { try filter?.evaluate($0) ?? true }
        let projected = matching.map { projection?.apply($0) ?? $0 }
        return PageOutput(
            Items: input.Select == "COUNT" ? nil : projected, Count: matching.count, ScannedCount: scanned, LastEvaluatedKey: lastEvaluated
        )
    }
}

/// A failed condition whose old item goes back to the caller (`ReturnValuesOnConditionCheckFailure: ALL_OLD`).
struct ConditionalCheckFailedWithItem: Error {
    var item: [String: AttributeValue]
}

extension Dictionary {
    var nilIfEmpty: Self? { isEmpty ? nil : self }
}
