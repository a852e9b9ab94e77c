import Foundation
import MartletAWS
import Testing

/// Random signing inputs (keys with spaces, unicode, `~ + / = & ? % …`, dot segments, query strings,
/// header sets) signed by botocore and by us: every presigned URL, canonical request and
/// Authorization header must be identical.
///
/// botocore comes from `MARTLET_PYTHON`, else the project's `.venv-peers` (which `scripts/test`
/// installs), else `python3`.
@Suite("Differential against botocore")
struct BotocoreDifferentialTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var python: String {
        if let configured = ProcessInfo.processInfo.environment["MARTLET_PYTHON"] { return configured }
        let venv = root.appendingPathComponent(".venv-peers/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "/usr/bin/env"
    }

    /// Runs the oracle; a random seed each run, printed on failure to reproduce it.
    static func oracle(seed: UInt32, count: Int) throws -> [[String: Any]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        let script = root.appendingPathComponent("scripts/lib/botocore_oracle.py").path
        process.arguments = (python == "/usr/bin/env" ? ["python3"] : []) + [script, "--seed", String(seed), "--count", String(count)]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let problems = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw OracleError(message: "the botocore oracle failed (is botocore installed? scripts/test installs it): \(String(decoding: problems, as: UTF8.self))")
        }
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return root["cases"] as! [[String: Any]]
    }

    struct OracleError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    @Test("300 random cases: presigned URLs, header signatures for SQS/DynamoDB/execute-api and S3")
    func randomCases() throws {
        let seed = UInt32.random(in: 1...UInt32.max)
        let cases = try Self.oracle(seed: seed, count: 300)
        #expect(cases.count == 300)
        var kinds: [String: Int] = [:]
        for testCase in cases {
            let kind = testCase["kind"] as! String
            kinds[kind, default: 0] += 1
            let context = Comment(rawValue: "seed \(seed): \(testCase)")
            switch kind {
            case "presign": try checkPresign(testCase, context)
            case "sign", "sign-s3": try checkSign(testCase, context)
            default: Issue.record("unknown case kind \(kind)")
            }
        }
        #expect(kinds["presign", default: 0] >= 90 && kinds["sign", default: 0] >= 90 && kinds["sign-s3", default: 0] >= 90)
    }

    private func credentials(_ testCase: [String: Any]) -> Credentials {
        Credentials(
            accessKeyID: testCase["access_key"] as! String, secretAccessKey: testCase["secret_key"] as! String,
            sessionToken: testCase["session_token"] as? String
        )
    }

    private func checkPresign(_ testCase: [String: Any], _ context: Comment) throws {
        let presigner = S3Presigner(
            credentials: credentials(testCase), region: testCase["region"] as! String,
            endpoint: (testCase["endpoint_url"] as? String).flatMap(RequestURL.init(string:)),
            addressing: S3AddressingStyle(rawValue: testCase["addressing_style"] as! String)!
        )
        let url = try presigner.presignedURL(
            testCase["method"] as! String == "PUT" ? .put : .get, bucket: testCase["bucket"] as! String, key: testCase["key"] as! String,
            expiresIn: testCase["expires"] as! Int, contentType: testCase["content_type"] as? String,
            at: try #require(AWSTimestamp(amzDate: testCase["now"] as! String))
        )
        #expect(url == testCase["expected_url"] as? String, context)
    }

    private func checkSign(_ testCase: [String: Any], _ context: Comment) throws {
        let signer = SigV4Signer(credentials: credentials(testCase), region: testCase["region"] as! String, service: testCase["service"] as! String)
        let url = try #require(RequestURL(string: testCase["url"] as! String), context)
        let headers = (testCase["headers"] as! [String: String]).sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        let body = Array((testCase["body"] as! String).utf8)
        let payload: SigV4Signer.Payload = testCase["payload_hash"] as? String == "UNSIGNED-PAYLOAD" ? .unsigned : .bytes(body)
        let time = try #require(AWSTimestamp(amzDate: testCase["now"] as! String))
        let method = testCase["method"] as! String
        let signed = signer.sign(method: method, url: url, headers: headers, payload: payload, at: time)
        let expected = testCase["expected_headers"] as! [String: String]
        for (name, value) in expected {
            #expect(signed.first { $0.name == name }?.value == value, "\(name) — \(context.rawValue)")
        }
        let payloadHash = testCase["payload_hash"] as? String ?? SHA256Hex.of(body)
        let canonical = signer.canonicalRequest(method: method, url: url, headers: signed.filter { $0.name != "Authorization" }, payloadHash: payloadHash)
        #expect(canonical == testCase["expected_canonical_request"] as? String, context)
        #expect(signer.stringToSign(canonicalRequest: canonical, at: time) == testCase["expected_string_to_sign"] as? String, context)
    }
}
