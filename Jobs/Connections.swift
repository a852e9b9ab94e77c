import MartletAWS

/// The connections table: one item per open WebSocket connection, with the client it belongs to.
/// Items expire (DynamoDB TTL) a little after API Gateway's 2-hour connection limit, so a missed
/// `$disconnect` cannot leave one behind for long.
public struct ConnectionStore: Sendable {
    public let dynamoDB: DynamoDBClient
    public let table: String
    /// Owners already looked up. A connection's id is never reused and its owner never changes,
    /// and a message can only arrive on an open connection, so an answer stays true while it is asked.
    private let knownOwners = SynchronizedDictionary<String, String>()
    /// API Gateway closes every connection after 2 hours.
    public static let maximumLifetime: Int64 = 2 * 3600

    public init(dynamoDB: DynamoDBClient, table: String) {
        self.dynamoDB = dynamoDB
        self.table = table
    }

    public func add(connectionId: String, owner: String, now: Int64) async throws {
        try await dynamoDB.putItem(table: table, item: [
            "connectionId": .s(connectionId), "owner": .s(owner), "connectedAt": .n(String(now)),
            "expiresAt": .n(String(now / 1000 + Self.maximumLifetime + 600)),
        ])
    }

    /// The client a connection belongs to, or nil when it is not (or no longer) registered.
    public func owner(of connectionId: String) async throws -> String? {
        if let owner = knownOwners[connectionId] { return owner }
        guard case .s(let owner)? = try await dynamoDB.getItem(table: table, key: ["connectionId": .s(connectionId)], consistentRead: true)?["owner"] else {
            return nil
        }
        knownOwners.insert(owner, for: connectionId, capacity: 10_000)
        return owner
    }

    public func remove(connectionId: String) async throws {
        knownOwners.removeValue(for: connectionId)
        try await dynamoDB.deleteItem(table: table, key: ["connectionId": .s(connectionId)])
    }
}
