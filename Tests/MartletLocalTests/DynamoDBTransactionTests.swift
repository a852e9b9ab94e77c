import Foundation
import MartletAWS
import MartletLocal
import MartletTestSupport
import Testing

/// `TransactWriteItems` on the local endpoint through our client: all or nothing, the reasons of a
/// cancel, AWS's refusals, and idempotent client tokens.
@Suite("DynamoDB transactions")
struct DynamoDBTransactionTests {
    func withTable<R: Sendable>(_ body: (DynamoDBClient, AWSClient) async throws -> R) async throws -> R {
        let objects = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-s3-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: objects) }
        return try await withLocalEndpoint(database: try SQLiteDatabase(path: nil), objectsFolder: objects) { url, _ in
            let aws = AWSClient(
                configuration: AWSConfiguration(region: "us-east-1", endpointURL: url, retry: RetryPolicy(maxAttempts: 1)),
                credentials: StaticCredentialProvider(Credentials(accessKeyID: "test", secretAccessKey: "test"))
            )
            let table = DynamoDBClient(aws)
            try await table.createTable("jobs", partitionKey: "pk")
            return try await body(table, aws)
        }
    }

    func cancelled(_ body: () async throws -> Void) async -> AWSServiceError? {
        do {
            try await body()
            return nil
        } catch let error as AWSServiceError {
            return error
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test("Every write is made together; a failed condition makes none, and the reasons name it")
    func allOrNothing() async throws {
        try await withTable { table, _ in
            try await table.putItem(table: "jobs", item: ["pk": "counter", "n": .n("1")])
            try await table.putItem(table: "jobs", item: ["pk": "gone", "x": "1"])
            try await table.transactWriteItems([
                .put(table: "jobs", item: ["pk": "a", "state": "QUEUED"], condition: "attribute_not_exists(pk)"),
                .update(table: "jobs", key: ["pk": "counter"], update: "ADD n :one", condition: "n < :max", attributes: .init(values: [":one": .n("1"), ":max": .n("5")])),
                .delete(table: "jobs", key: ["pk": "gone"]),
                .conditionCheck(table: "jobs", key: ["pk": "absent"], condition: "attribute_not_exists(pk)"),
            ])
            #expect(try await table.getItem(table: "jobs", key: ["pk": "a"])?["state"] == "QUEUED")
            #expect(try await table.getItem(table: "jobs", key: ["pk": "counter"])?["n"] == .n("2"))
            #expect(try await table.getItem(table: "jobs", key: ["pk": "gone"]) == nil)

            // The put's condition fails: the counter is not touched either.
            let error = await cancelled {
                try await table.transactWriteItems([
                    .put(table: "jobs", item: ["pk": "a", "state": "AGAIN"], condition: "attribute_not_exists(pk)"),
                    .update(table: "jobs", key: ["pk": "counter"], update: "ADD n :one", attributes: .init(values: [":one": .n("1")])),
                ])
            }
            #expect(error?.isTransactionCanceled == true && error?.status == 400)
            #expect(error?.cancellationReasons == [CancellationReason(code: "ConditionalCheckFailed", message: "The conditional request failed"), CancellationReason(code: "None")])
            #expect(error?.message == "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]")
            #expect(try await table.getItem(table: "jobs", key: ["pk": "a"])?["state"] == "QUEUED")
            #expect(try await table.getItem(table: "jobs", key: ["pk": "counter"])?["n"] == .n("2"))

            // An update that cannot apply (ADD to a string) cancels with a ValidationError reason.
            let invalid = await cancelled {
                try await table.transactWriteItems([
                    .update(table: "jobs", key: ["pk": "a"], update: "ADD #s :one", attributes: .init(names: ["#s": "state"], values: [":one": .n("1")])),
                    .put(table: "jobs", item: ["pk": "b"]),
                ])
            }
            #expect(invalid?.cancellationReasons.map(\.code) == ["ValidationError", "None"])
            #expect(try await table.getItem(table: "jobs", key: ["pk": "b"]) == nil)
        }
    }

    @Test("AWS's refusals: two writes to one item, more than 100 writes, a missing table, an unused value")
    func refusals() async throws {
        try await withTable { table, aws in
            let twice = await cancelled {
                try await table.transactWriteItems([.put(table: "jobs", item: ["pk": "a"]), .delete(table: "jobs", key: ["pk": "a"])])
            }
            #expect(twice?.code == "ValidationException" && twice?.message == "Transaction request cannot include multiple operations on one item")
            let noTable = await cancelled { try await table.transactWriteItems([.put(table: "nope", item: ["pk": "a"])]) }
            #expect(noTable?.code == "ResourceNotFoundException")
            let unused = await cancelled {
                try await table.transactWriteItems([.put(table: "jobs", item: ["pk": "a"], attributes: .init(values: [":x": "1"]))])
            }
            #expect(unused?.code == "ValidationException")
            let unchanged = try await table.getItem(table: "jobs", key: ["pk": "a"])
            #expect(unchanged == nil)

            // Refused by the server itself (our client refuses these before sending).
            let items = (0...100).map { #"{"Put":{"TableName":"jobs","Item":{"pk":{"S":"k\#($0)"}}}}"# }.joined(separator: ",")
            let tooMany = await cancelled { _ = try await aws.callJSON(.dynamoDB, target: "DynamoDB_20120810.TransactWriteItems", body: #"{"TransactItems":[\#(items)]}"#) }
            #expect(tooMany?.code == "ValidationException" && tooMany?.message.contains("less than or equal to 100") == true)
            let both = #"{"TransactItems":[{"Put":{"TableName":"jobs","Item":{"pk":{"S":"x"}}},"Delete":{"TableName":"jobs","Key":{"pk":{"S":"y"}}}}]}"#
            let twoActions = await cancelled { _ = try await aws.callJSON(.dynamoDB, target: "DynamoDB_20120810.TransactWriteItems", body: both) }
            #expect(twoActions?.message == "TransactItems can only contain one of Check, Put, Update or Delete")
            await #expect(throws: AWSClientError.self) { try await table.transactWriteItems([]) }
        }
    }

    @Test("A client token applies a transaction once in ten minutes; reused for another request it is refused")
    func clientTokens() async throws {
        try await withTable { table, _ in
            let add: [TransactionWrite] = [.update(table: "jobs", key: ["pk": "n"], update: "ADD n :one", attributes: .init(values: [":one": .n("1")]))]
            try await table.transactWriteItems(add, clientRequestToken: "token-1")
            try await table.transactWriteItems(add, clientRequestToken: "token-1")
            #expect(try await table.getItem(table: "jobs", key: ["pk": "n"])?["n"] == .n("1"))
            try await table.transactWriteItems(add)
            try await table.transactWriteItems(add)
            #expect(try await table.getItem(table: "jobs", key: ["pk": "n"])?["n"] == .n("3"))
            let mismatch = await cancelled {
                try await table.transactWriteItems([.put(table: "jobs", item: ["pk": "other"])], clientRequestToken: "token-1")
            }
            #expect(mismatch?.code == "IdempotentParameterMismatchException")
        }
    }

    @Test("ReturnValuesOnConditionCheckFailure: ALL_OLD puts the item in its reason")
    func oldItemInReason() async throws {
        try await withTable { table, aws in
            try await table.putItem(table: "jobs", item: ["pk": "a", "state": "RUNNING"])
            let body = ##"{"TransactItems":[{"ConditionCheck":{"TableName":"jobs","Key":{"pk":{"S":"a"}},"ConditionExpression":"#s = :q","ExpressionAttributeNames":{"#s":"state"},"ExpressionAttributeValues":{":q":{"S":"QUEUED"}},"ReturnValuesOnConditionCheckFailure":"ALL_OLD"}}]}"##
            let error = await cancelled { _ = try await aws.callJSON(.dynamoDB, target: "DynamoDB_20120810.TransactWriteItems", body: body) }
            let reasons = try JSONSerialization.jsonObject(with: Data(error?.body ?? [])) as? [String: Any]
            let first = (reasons?["CancellationReasons"] as? [[String: Any]])?.first
            #expect(first?["Code"] as? String == "ConditionalCheckFailed")
            #expect((first?["Item"] as? [String: Any])?["state"] as? [String: String] == ["S": "RUNNING"])
        }
    }
}
