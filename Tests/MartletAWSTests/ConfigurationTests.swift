import Foundation
import MartletAWS
import MartletLocal
import MartletTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// Configuration, credentials, timestamps, encodings and the DynamoDB Codable bridge.
@Suite("Configuration, credentials and encodings")
struct ConfigurationTests {
    @Test("Endpoints: a service's variable beats the global one; AWS's regional endpoints otherwise")
    func endpoints() throws {
        let configuration = try AWSConfiguration(environment: [
            "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_SQS": "http://localhost:9324",
        ])
        #expect(configuration.region == "eu-west-1")
        #expect(configuration.endpoint(for: .sqs).description == "http://localhost:9324/")
        #expect(configuration.endpoint(for: .dynamoDB).description == "http://127.0.0.1:4566/")
        let plain = try AWSConfiguration(environment: ["AWS_DEFAULT_REGION": "ap-southeast-2"])
        #expect(plain.endpoint(for: .sqs).description == "https://sqs.ap-southeast-2.amazonaws.com/")
        #expect(plain.endpoint(for: .dynamoDB).description == "https://dynamodb.ap-southeast-2.amazonaws.com/")
        #expect(plain.endpoint(for: .s3).description == "https://s3.ap-southeast-2.amazonaws.com/")
        let ignored = try AWSConfiguration(environment: ["AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://x:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"])
        #expect(ignored.customEndpoint(for: .sqs) == nil)
        #expect(throws: AWSClientError.self) { try AWSConfiguration(environment: [:]) }
        #expect(throws: AWSClientError.self) { try AWSConfiguration(environment: ["AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "not a url"]) }
        #expect(throws: AWSClientError.self) { try AWSConfiguration(environment: ["AWS_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "0"]) }
    }

    @Test("Credentials from the environment, as Lambda sets them")
    func environmentCredentials() async throws {
        let provider = EnvironmentCredentialProvider(environment: ["AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "TOK"])
        #expect(try await provider.credentials() == Credentials(accessKeyID: "AK", secretAccessKey: "SK", sessionToken: "TOK"))
        await #expect(throws: AWSClientError.self) { _ = try await EnvironmentCredentialProvider(environment: [:]).credentials() }
    }

    @Test("Shared credentials and config files, by profile")
    func sharedFiles() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try """
            [default]
            aws_access_key_id = DEFAULTKEY
            aws_secret_access_key = defaultsecret
            # a comment
            [dev]
            aws_access_key_id=DEVKEY
            aws_secret_access_key = dev/secret+=
            aws_session_token = devtoken
            """.write(to: folder.appendingPathComponent("credentials"), atomically: true, encoding: .utf8)
        try """
            [default]
            region = eu-central-1
            [profile dev]
            region = us-west-2
            s3 =
              addressing_style = path
            """.write(to: folder.appendingPathComponent("config"), atomically: true, encoding: .utf8)
        let environment = [
            "AWS_SHARED_CREDENTIALS_FILE": folder.appendingPathComponent("credentials").path,
            "AWS_CONFIG_FILE": folder.appendingPathComponent("config").path,
        ]
        #expect(try await SharedFileCredentialProvider(environment: environment).credentials().accessKeyID == "DEFAULTKEY")
        let dev = try await SharedFileCredentialProvider(environment: environment.merging(["AWS_PROFILE": "dev"]) { $1 }).credentials()
        #expect(dev == Credentials(accessKeyID: "DEVKEY", secretAccessKey: "dev/secret+=", sessionToken: "devtoken"))
        #expect(SharedConfigFiles(environment: environment, profile: "dev").value("region") == "us-west-2")
        #expect(SharedConfigFiles(environment: environment).value("region") == "eu-central-1")
        // The region comes from the config file when the environment has none.
        let client = try AWSClient(environment: environment.merging(["AWS_PROFILE": "dev"]) { $1 })
        #expect(client.configuration.region == "us-west-2")
        #expect(try await client.credentials.credentials().accessKeyID == "DEVKEY")
        await #expect(throws: AWSClientError.self) {
            _ = try await SharedFileCredentialProvider(environment: environment, profile: "missing").credentials()
        }
    }

    @Test("The ECS container endpoint: authorization token, caching, refresh before expiry")
    func containerCredentials() async throws {
        let log = RequestLog()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-ecs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenFile = folder.appendingPathComponent("token")
        try "secret-token\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        try await withHTTPServer({ request in
            log.record(request)
            guard request.headers.first(name: "Authorization") == "secret-token" else { return .json(.forbidden, #"{"message":"no"}"#) }
            // The first answer expires within the refresh margin; the second one an hour later.
            let expiry = AWSTimestamp.now.adding(seconds: log.count == 1 ? 120 : 3600).iso8601
            return .json(.ok, #"{"AccessKeyId":"ASIA\#(log.count)","SecretAccessKey":"s","Token":"t","Expiration":"\#(expiry)"}"#)
        }) { endpoint in
            let environment = ["AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint + "/v2/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile.path]
            let provider = try #require(try ContainerCredentialProvider(environment: environment, transport: HTTP1Transport.shared))
            #expect(try await provider.credentials().accessKeyID == "ASIA1")
            #expect(try await provider.credentials().accessKeyID == "ASIA2")  // refreshed: the first expires in 2 minutes
            #expect(try await provider.credentials().accessKeyID == "ASIA2")  // cached
            #expect(log.count == 2)
            #expect(log.requests.first?.path == "/v2/credentials")
        }
        #expect(throws: AWSClientError.self) {
            _ = try ContainerCredentialProvider(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/creds"], transport: HTTP1Transport.shared)
        }
        let relative = try #require(try ContainerCredentialProvider(environment: ["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc"], transport: HTTP1Transport.shared))
        #expect(relative.url.description == "http://169.254.170.2/v2/credentials/abc")
    }

    @Test("Timestamps format and parse without DateFormatter")
    func timestamps() throws {
        let time = AWSTimestamp(secondsSince1970: 1_440_938_160)
        #expect(time.amzDate == "20150830T123600Z")
        #expect(time.scopeDate == "20150830")
        #expect(time.iso8601 == "2015-08-30T12:36:00Z")
        #expect(AWSTimestamp(amzDate: "20150830T123600Z") == time)
        #expect(AWSTimestamp(iso8601: "2015-08-30T12:36:00.000Z") == time)
        #expect(AWSTimestamp(iso8601: "2015-08-30T12:36:00+00:00") == time)
        #expect(AWSTimestamp(iso8601: "2024-02-29T00:00:00Z")?.adding(seconds: 86_400).iso8601 == "2024-03-01T00:00:00Z")
        #expect(AWSTimestamp(amzDate: "20151330T123600Z") == nil)
        #expect(AWSTimestamp(Date(timeIntervalSince1970: 1_736_942_400)).amzDate == "20250115T120000Z")
    }

    @Test("URI encoding keeps unreserved characters and encodes everything else as uppercase hex")
    func uriEncoding() {
        #expect(URIEncoding.encode("a b+c/ü~-_.*") == "a%20b%2Bc%2F%C3%BC~-_.%2A")
        #expect(URIEncoding.encode("a b/c", keepingSlashes: true) == "a%20b/c")
        #expect(URIEncoding.decode("a%20b%2Bc") == "a b+c")
        #expect(URIEncoding.decode("a+b", plusAsSpace: true) == "a b")
        #expect(URIEncoding.decode("%zz") == nil)
    }

    struct Job: Codable, Equatable {
        var pk: String
        var progress: Int
        var score: Double
        var big: Int64
        var done: Bool
        var note: String?
        var tags: [String]
        var owner: [String: String]
    }

    @Test("DynamoDB items: Codable round trip, exact numbers, and the wire JSON of attribute values")
    func dynamoDBCoding() throws {
        let job = Job(pk: "job#1", progress: 40, score: 0.125, big: 9_007_199_254_740_993, done: false, note: nil, tags: ["gpu", "ü"], owner: ["connection": "abc="])
        let item = try DynamoDBEncoder().encode(job)
        #expect(item["pk"] == .s("job#1"))
        #expect(item["big"] == .n("9007199254740993"))
        #expect(item["done"] == .bool(false))
        #expect(item["tags"] == .l([.s("gpu"), .s("ü")]))
        #expect(item["owner"] == .m(["connection": .s("abc=")]))
        #expect(try DynamoDBDecoder().decode(Job.self, from: item) == job)
        let wire = try JSONEncoder().encode(["a": AttributeValue.n("1"), "b": .b([0, 1, 2]), "c": .null, "d": .ss(["x"])])
        let decoded = try JSONDecoder().decode([String: AttributeValue].self, from: wire)
        #expect(decoded == ["a": .n("1"), "b": .b([0, 1, 2]), "c": .null, "d": .ss(["x"])])
        #expect(String(decoding: try JSONEncoder().encode(AttributeValue.s("x")), as: UTF8.self) == #"{"S":"x"}"#)
        #expect(throws: (any Error).self) { try DynamoDBEncoder().encode([1, 2]) }
    }
}
