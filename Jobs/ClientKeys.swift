import MartletAWS

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The keys clients present (the `x-api-key` header, or `?key=` when a WebSocket connects), and
/// the owner id each stands for: a hash of the key, so records never hold a key.
public struct ClientKeys: Sendable {
    /// Owner ids by SHA-256 of the key.
    private let owners: [String: String]

    public init(keys: [String]) {
        var owners: [String: String] = [:]
        for key in keys where !key.isEmpty {
            let digest = Self.digest(key)
            owners[digest] = String(digest.prefix(20))
        }
        self.owners = owners
    }

    public var isEmpty: Bool { owners.isEmpty }

    /// The owner a key belongs to, or nil for a key we do not know.
    public func owner(forKey key: String) -> String? { owners[Self.digest(key)] }

    static func digest(_ key: String) -> String { Hex.encode(SHA256Hasher.hash(Array(key.utf8))) }

    /// Keys as configuration gives them: a comma-separated list, or a JSON document `{"keys": [...]}`
    /// (the form of the Secrets Manager secret).
    public static func parse(_ text: String) -> [String] {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("{") {
            struct Document: Decodable { var keys: [String] }
            return (try? JSONDecoder().decode(Document.self, from: Data(trimmed.utf8)).keys) ?? []
        }
        return trimmed.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    /// Loads the keys `configuration` names: `CLIENT_KEYS` directly, else the secret `CLIENT_KEYS_SECRET_ARN`.
    public static func load(_ configuration: ApplicationConfiguration, aws: AWSClient) async throws -> ClientKeys {
        if let keys = configuration.clientKeys { return ClientKeys(keys: parse(keys)) }
        if let arn = configuration.clientKeysSecretARN {
            return ClientKeys(keys: parse(try await SecretsManagerClient(aws).secretString(id: arn)))
        }
        return ClientKeys(keys: [])
    }
}
