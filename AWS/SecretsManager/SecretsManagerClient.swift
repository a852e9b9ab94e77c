/// Secrets Manager, for the one call applications make at start-up: reading a secret's value.
///
/// ```swift
/// let keys = try await SecretsManagerClient(aws).secretString(id: arn)
/// ```
public struct SecretsManagerClient: Sendable {
    public let aws: AWSClient

    public init(_ aws: AWSClient) { self.aws = aws }

    /// The secret's current string value (`GetSecretValue`, `AWSCURRENT`).
    public func secretString(id: String) async throws -> String {
        guard !id.isEmpty else { throw AWSClientError.invalidArgument("a secret id or ARN must not be empty") }
        struct Input: Encodable { var SecretId: String }
        struct Output: Decodable { var SecretString: String? }
        let output = try await aws.callJSON(.secretsManager, target: "secretsmanager.GetSecretValue", input: Input(SecretId: id), as: Output.self, jsonVersion: "1.1")
        guard let value = output.SecretString else {
            throw AWSClientError.invalidResponse("secret \(id) has no SecretString (binary secrets are not supported)")
        }
        return value
    }
}
