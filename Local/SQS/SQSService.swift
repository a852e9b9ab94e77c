import Foundation
import MartletAWS
import NIOCore
import NIOHTTP1
import Synchronization

/// Amazon SQS (JSON protocol) on the local endpoint, durable in SQLite: queues with attributes,
/// messages with visibility timeouts, delays, receive counts, retention and dead-letter redrive,
/// and long polls woken as soon as a message arrives.
public final class SQSService: Sendable {
    static let account = "000000000000"
    static let maxMessageSize = 1_048_576

    let database: SQLiteDatabase
    let region: String
    private let wakeups = QueueWakeups()

    public init(database: SQLiteDatabase, region: String = "us-east-1") throws {
        self.database = database
        self.region = region
        try database.write { db in
            try db.execute("""
                CREATE TABLE IF NOT EXISTS sqs_queues(
                    name TEXT PRIMARY KEY, attributes TEXT NOT NULL, created INTEGER NOT NULL, modified INTEGER NOT NULL,
                    purged_at INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE IF NOT EXISTS sqs_messages(
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
                    attributes TEXT NOT NULL, md5_body TEXT NOT NULL, md5_attributes TEXT, sent_ms INTEGER NOT NULL,
                    visible_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0,
                    first_receive_ms INTEGER, receipt TEXT, trace_header TEXT, source_queue TEXT);
                CREATE INDEX IF NOT EXISTS sqs_messages_ready ON sqs_messages(queue, visible_ms, seq);
                CREATE UNIQUE INDEX IF NOT EXISTS sqs_messages_receipt ON sqs_messages(receipt);
                """)
        }
    }

    /// Answers one `AmazonSQS.<operation>` call.
    public func handle(operation: String, body: ByteBuffer, host: String, requestID: String) async -> HTTPServerResponse {
        do {
            let input = try JSONBody.object(body)
            let output: [String: Any]
            switch operation {
            case "CreateQueue": output = try createQueue(input, host: host)
            case "GetQueueUrl": output = try getQueueURL(input, host: host)
            case "ListQueues": output = try listQueues(input, host: host)
            case "DeleteQueue": output = try deleteQueue(input)
            case "GetQueueAttributes": output = try getQueueAttributes(input)
            case "SetQueueAttributes": output = try setQueueAttributes(input)
            case "SendMessage": output = try sendMessage(input)
            case "SendMessageBatch": output = try sendMessageBatch(input)
            case "ReceiveMessage": output = try await receiveMessage(input)
            case "DeleteMessage": output = try deleteMessage(input)
            case "DeleteMessageBatch": output = try deleteMessageBatch(input)
            case "ChangeMessageVisibility": output = try changeMessageVisibility(input)
            case "ChangeMessageVisibilityBatch": output = try changeMessageVisibilityBatch(input)
            case "PurgeQueue": output = try purgeQueue(input)
            default:
                throw JSONProtocolError(type: "com.amazon.coral.service#UnknownOperationException", message: "Operation \(operation) is not supported.", queryError: "InvalidAction")
            }
            return JSONBody.response(output, requestID: requestID)
        } catch let error as JSONProtocolError {
            return error.response(requestID: requestID)
        } catch {
            return JSONProtocolError(status: .internalServerError, type: "com.amazonaws.sqs#InternalError", message: "\(error)", queryError: "InternalError")
                .response(requestID: requestID)
        }
    }

    // MARK: Errors

    static func invalidParameter(_ message: String) -> JSONProtocolError {
        JSONProtocolError(type: "com.amazonaws.sqs#InvalidParameterValueException", message: message, queryError: "InvalidParameterValue")
    }
    static func missingParameter(_ name: String) -> JSONProtocolError {
        JSONProtocolError(type: "com.amazonaws.sqs#MissingRequiredParameterException", message: "The request must contain the parameter \(name).", queryError: "MissingParameter")
    }
    static let queueDoesNotExist = JSONProtocolError(
        type: "com.amazonaws.sqs#QueueDoesNotExist", message: "The specified queue does not exist.", queryError: "AWS.SimpleQueueService.NonExistentQueue"
    )
    static func receiptHandleIsInvalid(_ handle: String) -> JSONProtocolError {
        JSONProtocolError(type: "com.amazonaws.sqs#ReceiptHandleIsInvalid", message: "The input receipt handle \"\(handle)\" is not a valid receipt handle.", queryError: "ReceiptHandleIsInvalid")
    }

    // MARK: Input helpers

    static func string(_ input: [String: Any], _ name: String) throws(JSONProtocolError) -> String {
        guard let value = input[name] else { throw missingParameter(name) }
        guard let text = value as? String else { throw invalidParameter("Value for parameter \(name) is invalid. Reason: must be a string.") }
        return text
    }

    static func integer(_ input: [String: Any], _ name: String, in range: ClosedRange<Int>) throws(JSONProtocolError) -> Int? {
        guard let value = input[name], !(value is NSNull) else { return nil }
        // JSON booleans are NSNumbers too; their type code is "c".
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c", Double(number.intValue) == number.doubleValue else {
            throw invalidParameter("Value \(value) for parameter \(name) is invalid. Reason: must be an integer.")
        }
        guard range.contains(number.intValue) else {
            throw invalidParameter("Value \(number.intValue) for parameter \(name) is invalid. Reason: Must be between \(range.lowerBound) and \(range.upperBound), if provided.")
        }
        return number.intValue
    }

    /// The queue named by a queue URL (`http://host/000000000000/name`), which must exist.
    func queue(_ input: [String: Any], _ db: SQLiteDatabase.Connection) throws -> Queue {
        let url = try Self.string(input, "QueueUrl")
        let name = String(url.split(separator: "/").last ?? "")
        guard let queue = try Queue.load(name, db) else { throw Self.queueDoesNotExist }
        return queue
    }

    func queueURL(_ name: String, host: String) -> String { "http://\(host)/\(Self.account)/\(name)" }
    func queueARN(_ name: String) -> String { "arn:aws:sqs:\(region):\(Self.account):\(name)" }

    static var nowMilliseconds: Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    // MARK: Queues

    func createQueue(_ input: [String: Any], host: String) throws -> [String: Any] {
        let name = try Self.string(input, "QueueName")
        guard (1...80).contains(name.count), name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") }) else {
            throw Self.invalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
        }
        let requested = try QueueAttributes.validated(input["Attributes"] as? [String: Any] ?? [:], creating: true)
        let now = Self.nowMilliseconds / 1000
        try database.write { db in
            if let existing = try Queue.load(name, db) {
                // Re-creating with the same attributes returns the queue; different ones are refused.
                for (key, value) in requested where existing.attributes[key] != value {
                    throw JSONProtocolError(type: "com.amazonaws.sqs#QueueNameExists", message: "A queue already exists with the same name and a different value for attribute \(key)", queryError: "QueueAlreadyExists")
                }
                return
            }
            let attributes = QueueAttributes.defaults.merging(requested) { $1 }
            try db.run("INSERT INTO sqs_queues(name, attributes, created, modified) VALUES (?, ?, ?, ?)", [.text(name), .text(QueueAttributes.encode(attributes)), .integer(now), .integer(now)])
        }
        return ["QueueUrl": queueURL(name, host: host)]
    }

    func getQueueURL(_ input: [String: Any], host: String) throws -> [String: Any] {
        let name = try Self.string(input, "QueueName")
        guard try database.read({ try Queue.load(name, $0) }) != nil else { throw Self.queueDoesNotExist }
        return ["QueueUrl": queueURL(name, host: host)]
    }

    func listQueues(_ input: [String: Any], host: String) throws -> [String: Any] {
        let prefix = input["QueueNamePrefix"] as? String ?? ""
        let names = try database.read { db in try db.query("SELECT name FROM sqs_queues ORDER BY name", []).compactMap { $0[0].text } }
        let urls = names.filter { $0.hasPrefix(prefix) }.map { queueURL($0, host: host) }
        return urls.isEmpty ? [:] : ["QueueUrls": urls]
    }

    func deleteQueue(_ input: [String: Any]) throws -> [String: Any] {
        try database.write { db in
            let queue = try queue(input, db)
            try db.run("DELETE FROM sqs_messages WHERE queue = ?", [.text(queue.name)])
            try db.run("DELETE FROM sqs_queues WHERE name = ?", [.text(queue.name)])
        }
        return [:]
    }

    /// Each queue's depth, for the local stack's live view.
    public struct QueueStatistics: Sendable, Codable, Equatable {
        public var name: String
        /// Messages a consumer can receive now, messages received and not yet deleted, and delayed ones.
        public var visible: Int
        public var inFlight: Int
        public var delayed: Int
    }

    /// The depth of every queue, by name.
    public func statistics() throws -> [QueueStatistics] {
        let now = Self.nowMilliseconds
        return try database.read { db in
            try db.query("""
                SELECT q.name,
                       SUM(CASE WHEN m.visible_ms <= ?1 THEN 1 ELSE 0 END),
                       SUM(CASE WHEN m.visible_ms > ?1 AND m.receive_count > 0 THEN 1 ELSE 0 END),
                       SUM(CASE WHEN m.visible_ms > ?1 AND m.receive_count = 0 THEN 1 ELSE 0 END)
                FROM sqs_queues q LEFT JOIN sqs_messages m ON m.queue = q.name AND m.expires_ms > ?1
                GROUP BY q.name ORDER BY q.name
                """, [.integer(now)]).map { row in
                QueueStatistics(
                    name: row[0].text ?? "", visible: Int(row[1].integer ?? 0), inFlight: Int(row[2].integer ?? 0), delayed: Int(row[3].integer ?? 0)
                )
            }
        }
    }

    func getQueueAttributes(_ input: [String: Any]) throws -> [String: Any] {
        let names = input["AttributeNames"] as? [String] ?? []
        let now = Self.nowMilliseconds
        return try database.read { db in
            let queue = try queue(input, db)
            var all = queue.attributes
            all["QueueArn"] = queueARN(queue.name)
            all["CreatedTimestamp"] = String(queue.created)
            all["LastModifiedTimestamp"] = String(queue.modified)
            let counts = try db.query("""
                SELECT SUM(CASE WHEN visible_ms <= ?1 THEN 1 ELSE 0 END),
                       SUM(CASE WHEN visible_ms > ?1 AND receive_count > 0 THEN 1 ELSE 0 END),
                       SUM(CASE WHEN visible_ms > ?1 AND receive_count = 0 THEN 1 ELSE 0 END)
                FROM sqs_messages WHERE queue = ?2 AND expires_ms > ?1
                """, [.integer(now), .text(queue.name)])[0]
            all["ApproximateNumberOfMessages"] = String(counts[0].integer ?? 0)
            all["ApproximateNumberOfMessagesNotVisible"] = String(counts[1].integer ?? 0)
            all["ApproximateNumberOfMessagesDelayed"] = String(counts[2].integer ?? 0)
            var selected: [String: String] = [:]
            for name in names {
                if name == "All" { selected = all; break }
                guard QueueAttributes.readable.contains(name) else {
                    throw JSONProtocolError(type: "com.amazonaws.sqs#InvalidAttributeName", message: "Unknown Attribute \(name).", queryError: "InvalidAttributeName")
                }
                if let value = all[name] { selected[name] = value }
            }
            return selected.isEmpty ? [:] : ["Attributes": selected]
        }
    }

    func setQueueAttributes(_ input: [String: Any]) throws -> [String: Any] {
        guard let attributes = input["Attributes"] as? [String: Any] else { throw Self.missingParameter("Attributes") }
        let validated = try QueueAttributes.validated(attributes, creating: false)
        try database.write { db in
            let queue = try queue(input, db)
            if let redrive = validated["RedrivePolicy"], !redrive.isEmpty {
                let target = try QueueAttributes.redrivePolicy(redrive)
                guard try Queue.load(String(target.targetARN.split(separator: ":").last ?? ""), db) != nil else {
                    throw Self.invalidParameter("Value \(redrive) for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.")
                }
            }
            let merged = queue.attributes.merging(validated) { $1 }.filter { !$0.value.isEmpty || $0.key != "RedrivePolicy" }
            try db.run("UPDATE sqs_queues SET attributes = ?, modified = ? WHERE name = ?", [.text(QueueAttributes.encode(merged)), .integer(Self.nowMilliseconds / 1000), .text(queue.name)])
        }
        return [:]
    }

    func purgeQueue(_ input: [String: Any]) throws -> [String: Any] {
        let now = Self.nowMilliseconds
        try database.write { db in
            let queue = try queue(input, db)
            // One purge per 60 seconds, as SQS allows.
            if now - queue.purgedAt < 60_000 {
                throw JSONProtocolError(status: .forbidden, type: "com.amazonaws.sqs#PurgeQueueInProgress", message: "Only one PurgeQueue operation on \(queue.name) is allowed every 60 seconds.", queryError: "AWS.SimpleQueueService.PurgeQueueInProgress")
            }
            try db.run("DELETE FROM sqs_messages WHERE queue = ?", [.text(queue.name)])
            try db.run("UPDATE sqs_queues SET purged_at = ? WHERE name = ?", [.integer(now), .text(queue.name)])
        }
        return [:]
    }

    // MARK: Sending

    struct Outgoing {
        var body: String
        var attributes: [String: [String: String]]
        var delay: Int?
        var traceHeader: String?
    }

    static func outgoing(_ input: [String: Any], prefix: String = "") throws(JSONProtocolError) -> Outgoing {
        let body = try string(input, "MessageBody")
        guard !body.isEmpty else { throw invalidParameter("The request must contain the parameter MessageBody.") }
        if let bad = body.unicodeScalars.first(where: { !SQSClient.isAllowed($0) }) {
            throw JSONProtocolError(type: "com.amazonaws.sqs#InvalidMessageContents", message: "Invalid binary character '#x\(String(bad.value, radix: 16, uppercase: true))' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF", queryError: "InvalidMessageContents")
        }
        var attributes: [String: [String: String]] = [:]
        if let raw = input["MessageAttributes"] as? [String: Any] {
            guard raw.count <= 10 else { throw invalidParameter("Number of message attributes [\(raw.count)] exceeds the allowed maximum [10].") }
            for (name, value) in raw {
                guard let fields = value as? [String: Any], let dataType = fields["DataType"] as? String else {
                    throw invalidParameter("The message attribute '\(name)' must contain a non-empty attribute type.")
                }
                var attribute = ["DataType": dataType]
                if let text = fields["StringValue"] as? String { attribute["StringValue"] = text }
                if let binary = fields["BinaryValue"] as? String { attribute["BinaryValue"] = binary }
                if dataType.hasPrefix("Binary") ? attribute["BinaryValue"] == nil : attribute["StringValue"] == nil {
                    throw invalidParameter("The message attribute '\(name)' must contain a non-empty message attribute value for message attribute type '\(dataType)'.")
                }
                if dataType.hasPrefix("Number"), let text = attribute["StringValue"], Double(text) == nil {
                    throw invalidParameter("Can't cast the value of message (user) attribute '\(name)' to a number.")
                }
                attributes[name] = attribute
            }
        }
        let size = body.utf8.count + attributes.reduce(0) { total, entry in
            total + entry.key.utf8.count + (entry.value["DataType"]?.utf8.count ?? 0) + (entry.value["StringValue"]?.utf8.count ?? 0)
                + (entry.value["BinaryValue"].flatMap { Base64.decode($0)?.count } ?? 0)
        }
        guard size <= maxMessageSize else {
            throw invalidParameter("One or more parameters are invalid. Reason: Message must be shorter than \(maxMessageSize) bytes.")
        }
        let trace = (input["MessageSystemAttributes"] as? [String: Any])?["AWSTraceHeader"].flatMap { ($0 as? [String: Any])?["StringValue"] as? String }
        return Outgoing(body: body, attributes: attributes, delay: try integer(input, "DelaySeconds", in: 0...900), traceHeader: trace)
    }

    static func md5(of attributes: [String: [String: String]]) -> String? {
        guard !attributes.isEmpty else { return nil }
        return SQSClient.md5(attributes.mapValues { MessageAttributeValue(dataType: $0["DataType"]!, stringValue: $0["StringValue"], binaryValue: $0["BinaryValue"]) })
    }

    /// Stores messages in one transaction; returns (id, MD5 of body, MD5 of attributes) each.
    private func store(_ messages: [Outgoing], in queue: Queue, db: SQLiteDatabase.Connection) throws -> [(String, String, String?)] {
        let now = Self.nowMilliseconds
        return try messages.map { message in
            let id = RequestID.make()
            let md5Body = SQSClient.md5(message.body)
            let md5Attributes = Self.md5(of: message.attributes)
            let delay = Int64(message.delay ?? Int(queue.attributes["DelaySeconds"] ?? "0") ?? 0)
            let retention = Int64(queue.attributes["MessageRetentionPeriod"] ?? "345600") ?? 345_600
            let encoded = message.attributes.isEmpty
                ? "{}" : String(decoding: try JSONSerialization.data(withJSONObject: message.attributes, options: [.sortedKeys]), as: UTF8.self)
            try db.run("""
                INSERT INTO sqs_messages(queue, id, body, attributes, md5_body, md5_attributes, sent_ms, visible_ms, expires_ms, trace_header)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(queue.name), .text(id), .text(message.body), .text(encoded), .text(md5Body), md5Attributes.map(SQLiteValue.text) ?? .null,
                      .integer(now), .integer(now + delay * 1000), .integer(now + retention * 1000), message.traceHeader.map(SQLiteValue.text) ?? .null])
            return (id, md5Body, md5Attributes)
        }
    }

    func sendMessage(_ input: [String: Any]) throws -> [String: Any] {
        let message = try Self.outgoing(input)
        let (queueName, stored) = try database.write { db in
            let queue = try queue(input, db)
            guard message.body.utf8.count <= Int(queue.attributes["MaximumMessageSize"] ?? "") ?? Self.maxMessageSize else {
                throw Self.invalidParameter("One or more parameters are invalid. Reason: Message must be shorter than \(queue.attributes["MaximumMessageSize"] ?? "") bytes.")
            }
            return (queue.name, try store([message], in: queue, db: db)[0])
        }
        wakeups.wake(queueName)
        var output: [String: Any] = ["MessageId": stored.0, "MD5OfMessageBody": stored.1]
        if let md5 = stored.2 { output["MD5OfMessageAttributes"] = md5 }
        return output
    }

    func sendMessageBatch(_ input: [String: Any]) throws -> [String: Any] {
        let entries = try Self.batchEntries(input)
        var successful: [[String: Any]] = []
        var failed: [[String: Any]] = []
        var accepted: [(id: String, message: Outgoing)] = []
        for entry in entries {
            let id = entry["Id"] as? String ?? ""
            do {
                accepted.append((id, try Self.outgoing(entry)))
            } catch {
                failed.append(["Id": id, "SenderFault": true, "Code": error.queryError ?? error.code, "Message": error.message])
            }
        }
        let total = accepted.reduce(0) { $0 + $1.message.body.utf8.count }
        guard total <= Self.maxMessageSize else {
            throw JSONProtocolError(type: "com.amazonaws.sqs#BatchRequestTooLong", message: "Batch requests cannot be longer than \(Self.maxMessageSize) bytes. You have sent \(total) bytes.", queryError: "AWS.SimpleQueueService.BatchRequestTooLong")
        }
        let queueName = try database.write { db in
            let queue = try queue(input, db)
            let stored = try store(accepted.map(\.message), in: queue, db: db)
            for (entry, result) in zip(accepted, stored) {
                var success: [String: Any] = ["Id": entry.id, "MessageId": result.0, "MD5OfMessageBody": result.1]
                if let md5 = result.2 { success["MD5OfMessageAttributes"] = md5 }
                successful.append(success)
            }
            return queue.name
        }
        wakeups.wake(queueName)
        return ["Successful": successful, "Failed": failed]
    }

    /// Batch entries: 1 to 10, ids distinct and well formed.
    static func batchEntries(_ input: [String: Any]) throws(JSONProtocolError) -> [[String: Any]] {
        guard let entries = input["Entries"] as? [[String: Any]] else { throw missingParameter("Entries") }
        guard !entries.isEmpty else {
            throw JSONProtocolError(type: "com.amazonaws.sqs#EmptyBatchRequest", message: "There should be at least one SendMessageBatchRequestEntry in the request.", queryError: "AWS.SimpleQueueService.EmptyBatchRequest")
        }
        guard entries.count <= 10 else {
            throw JSONProtocolError(type: "com.amazonaws.sqs#TooManyEntriesInBatchRequest", message: "Maximum number of entries per request are 10. You have sent \(entries.count).", queryError: "AWS.SimpleQueueService.TooManyEntriesInBatchRequest")
        }
        let ids = entries.map { $0["Id"] as? String ?? "" }
        for id in ids where id.isEmpty || id.count > 80 || !id.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") }) {
            throw JSONProtocolError(type: "com.amazonaws.sqs#InvalidBatchEntryId", message: "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.", queryError: "AWS.SimpleQueueService.InvalidBatchEntryId")
        }
        guard Set(ids).count == ids.count else {
            throw JSONProtocolError(type: "com.amazonaws.sqs#BatchEntryIdsNotDistinct", message: "Id \(ids.first { id in ids.filter { $0 == id }.count > 1 } ?? "") repeated.", queryError: "AWS.SimpleQueueService.BatchEntryIdsNotDistinct")
        }
        return entries
    }

    // MARK: Receiving

    func receiveMessage(_ input: [String: Any]) async throws -> [String: Any] {
        let maximum = try Self.integer(input, "MaxNumberOfMessages", in: 1...10) ?? 1
        let requestedVisibility = try Self.integer(input, "VisibilityTimeout", in: 0...43_200)
        let requestedWait = try Self.integer(input, "WaitTimeSeconds", in: 0...20)
        let systemNames = Set((input["MessageSystemAttributeNames"] as? [String] ?? []) + (input["AttributeNames"] as? [String] ?? []))
        let attributeNames = input["MessageAttributeNames"] as? [String] ?? []
        let queue: Queue = try database.read { db in try self.queue(input, db) }
        let wait = requestedWait ?? Int(queue.attributes["ReceiveMessageWaitTimeSeconds"] ?? "0") ?? 0
        let deadline = ContinuousClock.now + .seconds(wait)
        while true {
            let wakeup = wakeups.ticket(queue.name)
            let (messages, nextVisible) = try take(queue.name, maximum: maximum, visibility: requestedVisibility)
            // A cancelled wait (the endpoint is stopping) answers at once, as if the wait ran out.
            if !messages.isEmpty || ContinuousClock.now >= deadline || Task.isCancelled {
                return messages.isEmpty ? [:] : ["Messages": messages.map { $0.json(systemNames: systemNames, attributeNames: attributeNames) }]
            }
            // Sleep until a send, the next delayed or hidden message turning visible, or the deadline.
            var until = deadline
            if let nextVisible {
                let wait = Duration.milliseconds(max(1, nextVisible - Self.nowMilliseconds))
                until = min(until, ContinuousClock.now + wait)
            }
            await wakeups.wait(wakeup, until: until)
        }
    }

    /// Takes up to `maximum` visible messages, hiding them and counting the receive; moves messages
    /// over the redrive policy's `maxReceiveCount` to the dead-letter queue instead.
    private func take(_ name: String, maximum: Int, visibility: Int?) throws -> ([Received], Int64?) {
        var movedTo: [String] = []
        let result: ([Received], Int64?) = try database.write { db in
            guard let queue = try Queue.load(name, db) else { throw Self.queueDoesNotExist }
            let now = Self.nowMilliseconds
            try db.run("DELETE FROM sqs_messages WHERE queue = ? AND expires_ms <= ?", [.text(name), .integer(now)])
            let hide = Int64(visibility ?? Int(queue.attributes["VisibilityTimeout"] ?? "30") ?? 30) * 1000
            let redrive = queue.attributes["RedrivePolicy"].flatMap { try? QueueAttributes.redrivePolicy($0) }
            var received: [Received] = []
            let rows = try db.query("""
                SELECT seq, id, body, attributes, md5_body, md5_attributes, sent_ms, receive_count, first_receive_ms, trace_header
                FROM sqs_messages WHERE queue = ? AND visible_ms <= ? ORDER BY seq LIMIT ?
                """, [.text(name), .integer(now), .integer(Int64(maximum * 4))])
            for row in rows where received.count < maximum {
                let seq = row[0].integer!, count = row[7].integer!
                if let redrive, count >= Int64(redrive.maxReceiveCount) {
                    let target = String(redrive.targetARN.split(separator: ":").last ?? "")
                    if try Queue.load(target, db) != nil {
                        try db.run("UPDATE sqs_messages SET queue = ?, visible_ms = ?, receipt = NULL, source_queue = ? WHERE seq = ?", [.text(target), .integer(now), .text(queueARN(name)), .integer(seq)])
                        movedTo.append(target)
                        continue
                    }
                }
                let receipt = ReceiptHandle.make()
                let firstReceive = row[8].integer ?? now
                try db.run("UPDATE sqs_messages SET receive_count = receive_count + 1, visible_ms = ?, receipt = ?, first_receive_ms = ? WHERE seq = ?", [.integer(now + hide), .text(receipt), .integer(firstReceive), .integer(seq)])
                let storedAttributes = row[3].text ?? "{}"
                let attributes = storedAttributes == "{}"
                    ? [:] : (try? JSONSerialization.jsonObject(with: Data(storedAttributes.utf8))) as? [String: [String: String]] ?? [:]
                received.append(Received(
                    id: row[1].text!, receipt: receipt, body: row[2].text!, md5Body: row[4].text!, md5Attributes: row[5].text, attributes: attributes,
                    sent: row[6].integer!, receiveCount: count + 1, firstReceive: firstReceive, traceHeader: row[9].text
                ))
            }
            let next = try db.query("SELECT MIN(visible_ms) FROM sqs_messages WHERE queue = ? AND visible_ms > ?", [.text(name), .integer(now)])[0][0].integer
            return (received, next)
        }
        for target in movedTo { wakeups.wake(target) }
        return result
    }

    struct Received {
        var id, receipt, body, md5Body: String
        var md5Attributes: String?
        var attributes: [String: [String: String]]
        var sent, receiveCount, firstReceive: Int64
        var traceHeader: String?

        func json(systemNames: Set<String>, attributeNames: [String]) -> [String: Any] {
            var message: [String: Any] = ["MessageId": id, "ReceiptHandle": receipt, "MD5OfBody": md5Body, "Body": body]
            var system: [String: String] = [
                "SenderId": SQSService.account, "SentTimestamp": String(sent), "ApproximateReceiveCount": String(receiveCount),
                "ApproximateFirstReceiveTimestamp": String(firstReceive),
            ]
            if let traceHeader { system["AWSTraceHeader"] = traceHeader }
            let all = systemNames.contains("All")
            let chosen = system.filter { all || systemNames.contains($0.key) }
            if !chosen.isEmpty { message["Attributes"] = chosen }
            let wanted = attributes.filter { name, _ in
                attributeNames.contains { $0 == "All" || $0 == ".*" || $0 == name || ($0.hasSuffix(".*") && name.hasPrefix(String($0.dropLast(2)))) }
            }
            if !wanted.isEmpty {
                message["MessageAttributes"] = wanted
                if let md5 = SQSService.md5(of: wanted) { message["MD5OfMessageAttributes"] = md5 }
            }
            return message
        }
    }

    // MARK: Deleting and visibility

    func deleteMessage(_ input: [String: Any]) throws -> [String: Any] {
        let handle = try Self.string(input, "ReceiptHandle")
        try database.write { db in
            let queue = try queue(input, db)
            try delete(handle, queue: queue.name, db: db)
        }
        return [:]
    }

    private func delete(_ handle: String, queue: String, db: SQLiteDatabase.Connection) throws {
        guard ReceiptHandle.isWellFormed(handle) else { throw Self.receiptHandleIsInvalid(handle) }
        // A stale handle of a well-formed shape succeeds without deleting, as SQS does.
        try db.run("DELETE FROM sqs_messages WHERE queue = ? AND receipt = ?", [.text(queue), .text(handle)])
    }

    func deleteMessageBatch(_ input: [String: Any]) throws -> [String: Any] {
        let entries = try Self.batchEntries(input)
        var successful: [[String: Any]] = []
        var failed: [[String: Any]] = []
        try database.write { db in
            let queue = try queue(input, db)
            for entry in entries {
                let id = entry["Id"] as? String ?? ""
                do {
                    try delete(entry["ReceiptHandle"] as? String ?? "", queue: queue.name, db: db)
                    successful.append(["Id": id])
                } catch let error as JSONProtocolError {
                    failed.append(["Id": id, "SenderFault": true, "Code": error.queryError ?? error.code, "Message": error.message])
                }
            }
        }
        return ["Successful": successful, "Failed": failed]
    }

    func changeMessageVisibility(_ input: [String: Any]) throws -> [String: Any] {
        let handle = try Self.string(input, "ReceiptHandle")
        guard let timeout = try Self.integer(input, "VisibilityTimeout", in: 0...43_200) else { throw Self.missingParameter("VisibilityTimeout") }
        let name = try database.write { db in
            let queue = try queue(input, db)
            try changeVisibility(handle, timeout: timeout, queue: queue.name, db: db)
            return queue.name
        }
        wakeups.wake(name)
        return [:]
    }

    private func changeVisibility(_ handle: String, timeout: Int, queue: String, db: SQLiteDatabase.Connection) throws {
        guard ReceiptHandle.isWellFormed(handle) else { throw Self.receiptHandleIsInvalid(handle) }
        let now = Self.nowMilliseconds
        let changed = try db.run("UPDATE sqs_messages SET visible_ms = ? WHERE queue = ? AND receipt = ? AND visible_ms > ?", [.integer(now + Int64(timeout) * 1000), .text(queue), .text(handle), .integer(now)])
        guard changed == 1 else {
            throw JSONProtocolError(type: "com.amazonaws.sqs#MessageNotInflight", message: "Value \(handle) for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.", queryError: "AWS.SimpleQueueService.MessageNotInflight")
        }
    }

    func changeMessageVisibilityBatch(_ input: [String: Any]) throws -> [String: Any] {
        let entries = try Self.batchEntries(input)
        var successful: [[String: Any]] = []
        var failed: [[String: Any]] = []
        let name = try database.write { db in
            let queue = try queue(input, db)
            for entry in entries {
                let id = entry["Id"] as? String ?? ""
                do {
                    guard let timeout = try Self.integer(entry, "VisibilityTimeout", in: 0...43_200) else { throw Self.missingParameter("VisibilityTimeout") }
                    try changeVisibility(entry["ReceiptHandle"] as? String ?? "", timeout: timeout, queue: queue.name, db: db)
                    successful.append(["Id": id])
                } catch let error as JSONProtocolError {
                    failed.append(["Id": id, "SenderFault": true, "Code": error.queryError ?? error.code, "Message": error.message])
                }
            }
            return queue.name
        }
        wakeups.wake(name)
        return ["Successful": successful, "Failed": failed]
    }
}

/// A queue's stored row.
struct Queue {
    var name: String
    var attributes: [String: String]
    var created: Int64
    var modified: Int64
    var purgedAt: Int64

    static func load(_ name: String, _ db: SQLiteDatabase.Connection) throws -> Queue? {
        guard let row = try db.query("SELECT attributes, created, modified, purged_at FROM sqs_queues WHERE name = ?", [.text(name)]).first else { return nil }
        return Queue(name: name, attributes: QueueAttributes.decode(row[0].text ?? "{}"), created: row[1].integer ?? 0, modified: row[2].integer ?? 0, purgedAt: row[3].integer ?? 0)
    }
}

/// Settable queue attributes, their defaults and limits.
enum QueueAttributes {
    static let defaults: [String: String] = [
        "VisibilityTimeout": "30", "MaximumMessageSize": "1048576", "MessageRetentionPeriod": "345600", "DelaySeconds": "0",
        "ReceiveMessageWaitTimeSeconds": "0", "SqsManagedSseEnabled": "true",
    ]
    static let ranges: [String: ClosedRange<Int>] = [
        "VisibilityTimeout": 0...43_200, "MaximumMessageSize": 1024...1_048_576, "MessageRetentionPeriod": 60...1_209_600,
        "DelaySeconds": 0...900, "ReceiveMessageWaitTimeSeconds": 0...20,
    ]
    static let settable: Set<String> = Set(ranges.keys).union(["RedrivePolicy", "RedriveAllowPolicy", "Policy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled"])
    static let readable: Set<String> = settable.union([
        "All", "QueueArn", "CreatedTimestamp", "LastModifiedTimestamp", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ])

    static func validated(_ raw: [String: Any], creating: Bool) throws(JSONProtocolError) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in raw {
            if name == "FifoQueue" || name == "ContentBasedDeduplication" {
                throw JSONProtocolError(type: "com.amazonaws.sqs#UnsupportedOperation", message: "FIFO queues are not supported by the local endpoint yet.", queryError: "AWS.SimpleQueueService.UnsupportedOperation")
            }
            guard settable.contains(name) else {
                throw JSONProtocolError(type: "com.amazonaws.sqs#InvalidAttributeName", message: "Unknown Attribute \(name).", queryError: "InvalidAttributeName")
            }
            let text = (value as? String) ?? "\(value)"
            if let range = ranges[name] {
                guard let number = Int(text), range.contains(number) else {
                    throw JSONProtocolError(type: "com.amazonaws.sqs#InvalidAttributeValue", message: "Invalid value for the parameter \(name).", queryError: "InvalidAttributeValue")
                }
            }
            if name == "RedrivePolicy", !text.isEmpty { _ = try redrivePolicy(text) }
            result[name] = text
        }
        return result
    }

    struct RedrivePolicy {
        var targetARN: String
        var maxReceiveCount: Int
    }

    static func redrivePolicy(_ text: String) throws(JSONProtocolError) -> RedrivePolicy {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
            let arn = object["deadLetterTargetArn"] as? String,
            let count = (object["maxReceiveCount"] as? NSNumber)?.intValue ?? (object["maxReceiveCount"] as? String).flatMap({ Int($0) }),
            (1...1000).contains(count)
        else {
            throw JSONProtocolError(type: "com.amazonaws.sqs#InvalidAttributeValue", message: "Value \(text) for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid JSON map with deadLetterTargetArn and maxReceiveCount (1 to 1000).", queryError: "InvalidAttributeValue")
        }
        return RedrivePolicy(targetARN: arn, maxReceiveCount: count)
    }

    static func encode(_ attributes: [String: String]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: attributes, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Stored attributes, decoded once per distinct text (every request reads its queue's).
    static func decode(_ text: String) -> [String: String] {
        if let known = decoded[text] { return known }
        let attributes = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String] ?? [:]
        decoded.insert(attributes, for: text, capacity: 1000)
        return attributes
    }

    private static let decoded = SynchronizedDictionary<String, [String: String]>()
}

/// Receipt handles: opaque, unique per receive.
enum ReceiptHandle {
    static func make() -> String {
        // 48 random bytes, drawn eight at a time (one system call each, not one per byte).
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(48)
        for _ in 0..<6 { withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) } }
        return "AQEB" + Base64.encode(bytes)
    }

    static func isWellFormed(_ handle: String) -> Bool { handle.hasPrefix("AQEB") && handle.count > 8 }
}

/// Wakes long polls of a queue when a message may have become available.
final class QueueWakeups: Sendable {
    private struct State {
        var generation: [String: UInt64] = [:]
        var waiters: [String: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)]] = [:]
        var nextID: UInt64 = 0
    }

    struct Ticket {
        var queue: String
        var generation: UInt64
    }

    private let state = Mutex(State())

    /// Taken before looking for messages, so a send between the look and the wait is not missed.
    func ticket(_ queue: String) -> Ticket { state.withLock { Ticket(queue: queue, generation: $0.generation[queue, default: 0]) } }

    func wake(_ queue: String) {
        let waiters = state.withLock { state in
            state.generation[queue, default: 0] += 1
            return state.waiters.removeValue(forKey: queue) ?? []
        }
        for waiter in waiters { waiter.continuation.resume() }
    }

    /// Waits for a wake-up after the ticket, until `deadline`, or until cancelled.
    func wait(_ ticket: Ticket, until deadline: ContinuousClock.Instant) async {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let resumeNow = self.state.withLock { state in
                            if state.generation[ticket.queue, default: 0] != ticket.generation || Task.isCancelled { return true }
                            state.waiters[ticket.queue, default: []].append((id, continuation))
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                        guard let index = state.waiters[ticket.queue]?.firstIndex(where: { $0.id == id }) else { return nil }
                        return state.waiters[ticket.queue]?.remove(at: index).continuation
                    }
                    waiter?.resume()
                }
            }
            group.addTask { try? await Task.sleep(until: deadline) }
            await group.next()
            group.cancelAll()
        }
    }
}
