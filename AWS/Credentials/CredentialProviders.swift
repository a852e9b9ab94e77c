import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where credentials come from.
public protocol CredentialProvider: Sendable {
    /// Current credentials; refreshed by the provider before they expire.
    func credentials() async throws -> Credentials
}

/// Fixed credentials.
public struct StaticCredentialProvider: CredentialProvider {
    let value: Credentials
    public init(_ credentials: Credentials) { self.value = credentials }
    public func credentials() async throws -> Credentials { value }
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, as Lambda sets them.
public struct EnvironmentCredentialProvider: CredentialProvider {
    let environment: [String: String]
    public init(environment: [String: String]) { self.environment = environment }

    /// The credentials, or `nil` when the variables are not set.
    public var resolved: Credentials? {
        guard let key = environment["AWS_ACCESS_KEY_ID"].nonEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"].nonEmpty else { return nil }
        return Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"].nonEmpty)
    }

    public func credentials() async throws -> Credentials {
        guard let resolved else { throw AWSClientError.missingCredentials("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set") }
        return resolved
    }
}

/// The shared credentials and config files (`~/.aws/credentials`, `~/.aws/config`) for a profile,
/// for use from a laptop. `AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` are honoured.
public struct SharedFileCredentialProvider: CredentialProvider {
    let files: SharedConfigFiles
    public init(environment: [String: String], profile: String? = nil) { self.files = SharedConfigFiles(environment: environment, profile: profile) }

    /// The credentials of the profile, or `nil` when the files don't have them.
    public var resolved: Credentials? {
        guard let key = files.value("aws_access_key_id"), let secret = files.value("aws_secret_access_key") else { return nil }
        return Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: files.value("aws_session_token"))
    }

    public func credentials() async throws -> Credentials {
        guard let resolved else {
            throw AWSClientError.missingCredentials("profile \(files.profile) has no aws_access_key_id/aws_secret_access_key in \(files.credentialsPath) or \(files.configPath)")
        }
        return resolved
    }
}

/// Reads the shared credentials and config files (INI) for one profile.
public struct SharedConfigFiles: Sendable {
    public let profile: String
    let credentialsPath: String
    let configPath: String
    private let credentialsSection: [String: String]
    private let configSection: [String: String]

    public init(environment: [String: String], profile: String? = nil) {
        let home = environment["HOME"] ?? "~"
        self.profile = profile ?? environment["AWS_PROFILE"].nonEmpty ?? environment["AWS_DEFAULT_PROFILE"].nonEmpty ?? "default"
        credentialsPath = environment["AWS_SHARED_CREDENTIALS_FILE"].nonEmpty ?? "\(home)/.aws/credentials"
        configPath = environment["AWS_CONFIG_FILE"].nonEmpty ?? "\(home)/.aws/config"
        credentialsSection = Self.section(self.profile, in: Self.read(credentialsPath))
        // The config file names sections `[profile NAME]`, except `[default]`.
        let configText = Self.read(configPath)
        var section = Self.section("profile \(self.profile)", in: configText)
        if section.isEmpty, self.profile == "default" { section = Self.section("default", in: configText) }
        configSection = section
    }

    /// A setting of the profile: the credentials file first, then the config file.
    public func value(_ key: String) -> String? { credentialsSection[key] ?? configSection[key] }

    private static func read(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The `key = value` pairs of `[name]`; comments (`#`, `;`) and nested (indented) values skipped.
    static func section(_ name: String, in text: String) -> [String: String] {
        var values: [String: String] = [:]
        var inSection = false
        for rawLine in text.split(whereSeparator: \.isNewline) {
            if rawLine.first == " " || rawLine.first == "\t" { continue }
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                let header = line.dropFirst().prefix { $0 != "]" }.trimmingWhitespace()
                inSection = header.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") == name
                continue
            }
            guard inSection, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingWhitespace().lowercased()
            let value = line[line.index(after: equals)...].trimmingWhitespace()
            if !key.isEmpty { values[key] = value }
        }
        return values
    }
}

/// The ECS container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, or
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), cached
/// and refreshed five minutes before they expire.
public final class ContainerCredentialProvider: CredentialProvider {
    static let ecsHost = "169.254.170.2"
    /// Hosts a plain-HTTP full URI may name, as the AWS SDKs allow.
    static let allowedHTTPHosts: Set<String> = ["127.0.0.1", "localhost", "[::1]", "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"]
    static let refreshMargin: Int64 = 300

    /// The endpoint credentials are fetched from.
    public let url: RequestURL
    let environment: [String: String]
    let transport: any HTTPTransport
    private let cache = CredentialCache()

    /// `nil` when the environment names no container endpoint. Throws when it names a disallowed one.
    public init?(environment: [String: String], transport: any HTTPTransport) throws(AWSClientError) {
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"].nonEmpty {
            guard let url = RequestURL(string: "http://\(Self.ecsHost)\(relative.hasPrefix("/") ? "" : "/")\(relative)") else {
                throw .invalidArgument("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a path: \(relative)")
            }
            self.url = url
        } else if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"].nonEmpty {
            guard let url = RequestURL(string: full) else { throw .invalidArgument("AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL: \(full)") }
            guard url.scheme == "https" || Self.allowedHTTPHosts.contains(url.host) || url.host.hasPrefix("127.") else {
                throw .invalidArgument("AWS_CONTAINER_CREDENTIALS_FULL_URI must use https or a loopback or ECS/EKS address, not \(url.host)")
            }
            self.url = url
        } else {
            return nil
        }
        self.environment = environment
        self.transport = transport
    }

    public func credentials() async throws -> Credentials {
        try await cache.get(refreshingWithin: Self.refreshMargin) { try await self.fetch() }
    }

    private func fetch() async throws -> Credentials {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let path = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"].nonEmpty {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw AWSClientError.missingCredentials("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(path)")
            }
            headers.append(("Authorization", String(decoding: data, as: UTF8.self).trimmingWhitespace()))
        } else if let token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"].nonEmpty {
            headers.append(("Authorization", token))
        }
        var lastError: (any Error)?
        for attempt in 0..<3 {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(100 << attempt)) }
            do {
                let response = try await transport.send(AWSHTTPRequest(method: "GET", url: url, headers: headers), timeout: .seconds(5))
                let body = try await response.collect(upTo: 64 * 1024)
                guard response.status == 200 else {
                    lastError = AWSClientError.missingCredentials("the container credentials endpoint answered \(response.status): \(String(buffer: body))")
                    if response.status < 500 { break }
                    continue
                }
                let document = try JSONDecoder().decode(ContainerCredentialsDocument.self, from: Data(body.readableBytesView))
                return Credentials(
                    accessKeyID: document.AccessKeyId, secretAccessKey: document.SecretAccessKey, sessionToken: document.Token,
                    expiration: document.Expiration.flatMap { AWSTimestamp(iso8601: $0) }
                )
            } catch {
                lastError = error
            }
        }
        throw AWSClientError.missingCredentials("no credentials from the container endpoint \(url): \(lastError.map { "\($0)" } ?? "unknown error")")
    }
}

private struct ContainerCredentialsDocument: Decodable {
    var AccessKeyId: String
    var SecretAccessKey: String
    var Token: String?
    var Expiration: String?
}

/// Credentials cached until shortly before they expire; concurrent callers share one refresh.
actor CredentialCache {
    private var current: Credentials?
    private var refreshing: Task<Credentials, any Error>?

    func get(refreshingWithin margin: Int64, _ fetch: @escaping @Sendable () async throws -> Credentials) async throws -> Credentials {
        if let current, !current.expires(within: margin) { return current }
        if let refreshing { return try await refreshing.value }
        let task = Task { try await fetch() }
        refreshing = task
        defer { refreshing = nil }
        do {
            let fresh = try await task.value
            current = fresh
            return fresh
        } catch {
            // Expired-soon credentials still work until they expire: keep using them if the refresh fails.
            if let current, !current.expires(within: 0) { return current }
            throw error
        }
    }
}

/// The first provider that has credentials, as the AWS SDKs look: environment, shared files,
/// container endpoint. Resolved on first use and cached.
public final class CredentialProviderChain: CredentialProvider {
    let providers: [any CredentialProvider]

    public init(_ providers: [any CredentialProvider]) { self.providers = providers }

    /// The default chain for an environment.
    public static func `default`(environment: [String: String], transport: any HTTPTransport) -> CredentialProviderChain {
        var providers: [any CredentialProvider] = [EnvironmentCredentialProvider(environment: environment), SharedFileCredentialProvider(environment: environment)]
        do {
            if let container = try ContainerCredentialProvider(environment: environment, transport: transport) { providers.append(container) }
        } catch {
            providers.append(FailingCredentialProvider(error: error))
        }
        return CredentialProviderChain(providers)
    }

    public func credentials() async throws -> Credentials {
        var reasons: [String] = []
        for provider in providers {
            do {
                return try await provider.credentials()
            } catch let error as AWSClientError where error.isMissingCredentials {
                reasons.append(error.message)
            }
        }
        throw AWSClientError.missingCredentials("no AWS credentials found: " + reasons.joined(separator: "; "))
    }
}

private struct FailingCredentialProvider: CredentialProvider {
    let error: AWSClientError
    func credentials() async throws -> Credentials { throw AWSClientError.missingCredentials(error.message) }
}
