import Foundation
import Testing

@testable import MartletLocal

@Suite("S3 POST policy")
struct S3PostPolicyTests {
    /// The policy of AWS's "Browser-Based Upload using HTTP POST (Using AWS Signature Version 4)" example.
    static let awsExamplePolicy =
        "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9"
    static let awsExampleFields: [String: String] = [
        "key": "user/user1/photo.jpg", "acl": "public-read",
        "success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
        "content-type": "image/jpeg", "x-amz-meta-uuid": "14365123651274", "x-amz-server-side-encryption": "AES256",
        "x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
        "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-date": "20151229T000000Z", "x-amz-meta-tag": "",
        "policy": awsExamplePolicy,
        "x-amz-signature": "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e",
        "bucket": "sigv4examplebucket",
    ]
    static let beforeExpiry = Date(timeIntervalSince1970: 1_451_433_600)  // 2015-12-30T00:00:00Z

    /// botocore 1.43.11 generate_presigned_post with a content-length-range (shared/vectors/sigv4.json).
    static let botoPolicy =
        "eyJleHBpcmF0aW9uIjogIjIwMjUtMDEtMTVUMTM6MDA6MDBaIiwgImNvbmRpdGlvbnMiOiBbWyJjb250ZW50LWxlbmd0aC1yYW5nZSIsIDEsIDEwNDg1NzYwXSwgWyJzdGFydHMtd2l0aCIsICIkQ29udGVudC1UeXBlIiwgImltYWdlLyJdLCB7ImJ1Y2tldCI6ICJqb2JzLWFydGlmYWN0cyJ9LCBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXBsb2Fkcy9qb2ItMTIzLyJdLCB7IngtYW16LWFsZ29yaXRobSI6ICJBV1M0LUhNQUMtU0hBMjU2In0sIHsieC1hbXotY3JlZGVudGlhbCI6ICJBS0lETE9DQUxFWEFNUExFLzIwMjUwMTE1L3VzLWVhc3QtMS9zMy9hd3M0X3JlcXVlc3QifSwgeyJ4LWFtei1kYXRlIjogIjIwMjUwMTE1VDEyMDAwMFoifV19"
    static let botoFields: [String: String] = [
        "content-type": "image/png", "key": "uploads/job-123/cat.png", "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": "AKIDLOCALEXAMPLE/20250115/us-east-1/s3/aws4_request", "x-amz-date": "20250115T120000Z",
        "policy": botoPolicy, "x-amz-signature": "c9fa4952095c2de5744c772c05a28bf12d0c7a14681de851044746279c47185e",
        "bucket": "jobs-artifacts",
    ]
    static let botoNow = Date(timeIntervalSince1970: 1_736_942_400)  // 2025-01-15T12:00:00Z

    static func policy(_ json: String) throws -> S3PostPolicy {
        try S3PostPolicy(base64Policy: Data(json.utf8).base64EncodedString())
    }

    // MARK: Parsing

    @Test("AWS's example policy parses, with fractional-second expiration and CRLF whitespace")
    func awsExample() throws {
        let policy = try S3PostPolicy(base64Policy: Self.awsExamplePolicy)
        #expect(policy.expiration == Date(timeIntervalSince1970: 1_451_476_800))  // 2015-12-30T12:00:00Z
        #expect(policy.conditions.count == 11)
        #expect(policy.conditions[0].requirement == .equals(field: "bucket", value: "sigv4examplebucket"))
        #expect(policy.conditions[1].requirement == .startsWith(field: "key", prefix: "user/user1/"))
        #expect(policy.conditions[4].rendered == #"["starts-with", "$Content-Type", "image/"]"#)
        #expect(policy.checkFields(Self.awsExampleFields, now: Self.beforeExpiry) == nil)
        #expect(policy.checkContentLength(123_456_789) == nil)
    }

    @Test("botocore's presigned POST policy passes and enforces its content-length-range")
    func botoPolicy() throws {
        let policy = try S3PostPolicy(base64Policy: Self.botoPolicy)
        #expect(policy.conditions.first?.requirement == .contentLengthRange(min: 1, max: 10_485_760))
        #expect(policy.check(fields: Self.botoFields, contentLength: 10_485_760, now: Self.botoNow) == nil)
        #expect(policy.check(fields: Self.botoFields, contentLength: 1, now: Self.botoNow) == nil)

        let tooLarge = policy.check(fields: Self.botoFields, contentLength: 10_485_761, now: Self.botoNow)
        #expect(tooLarge?.code == "EntityTooLarge")
        #expect(tooLarge?.httpStatus == 400)
        #expect(tooLarge?.message == "Your proposed upload exceeds the maximum allowed size")
        #expect(tooLarge?.extraElements.map(\.0) == ["ProposedSize", "MaxSizeAllowed"])
        #expect(tooLarge?.extraElements.map(\.1) == ["10485761", "10485760"])

        let tooSmall = policy.checkContentLength(0)
        #expect(tooSmall?.code == "EntityTooSmall")
        #expect(tooSmall?.httpStatus == 400)
        #expect(tooSmall?.message == "Your proposed upload is smaller than the minimum allowed size")
        #expect(tooSmall?.extraElements.map(\.0) == ["ProposedSize", "MinSizeAllowed"])
        #expect(tooSmall?.extraElements.map(\.1) == ["0", "1"])
    }

    @Test(
        "expiration formats",
        arguments: [
            ("2025-01-15T13:00:00Z", 1_736_946_000.0),
            ("2025-01-15T13:00:00.5Z", 1_736_946_000.5),
            ("2025-01-15T13:00:00.000Z", 1_736_946_000.0),
            ("2025-01-15T14:30:00+01:30", 1_736_946_000.0),
            ("2024-02-29T00:00:00Z", 1_709_164_800.0),
            ("1970-01-01T00:00:00Z", 0.0),
        ]
    )
    func expirationFormats(text: String, seconds: Double) throws {
        let policy = try Self.policy(#"{"expiration": "\#(text)", "conditions": []}"#)
        #expect(abs(policy.expiration.timeIntervalSince1970 - seconds) < 0.001)
    }

    @Test(
        "malformed policies are InvalidPolicyDocument",
        arguments: [
            ("not base64 !", "Invalid Policy: Policy is not valid Base64."),
            ("e30", "Invalid Policy: Policy is not valid Base64."),  // unpadded
        ]
    )
    func badBase64(policy: String, message: String) {
        #expect(throws: S3PostPolicyViolation.invalidPolicy("Policy is not valid Base64.")) {
            try S3PostPolicy(base64Policy: policy)
        }
        #expect(S3PostPolicyViolation.invalidPolicy("x").message == "Invalid Policy: x")
        #expect(S3PostPolicyViolation.invalidPolicy("x").code == "InvalidPolicyDocument")
        #expect(S3PostPolicyViolation.invalidPolicy("x").httpStatus == 400)
        _ = message
    }

    @Test(
        "malformed policy JSON is InvalidPolicyDocument",
        arguments: [
            ("{", "Invalid JSON."),
            ("[]", "Invalid JSON."),
            (#"{"conditions": []}"#, "Policy missing expiration."),
            (#"{"expiration": "2025-01-15T13:00:00Z"}"#, "Policy missing conditions."),
            (#"{"expiration": "2025-01-15", "conditions": []}"#, "Invalid 'expiration' value: '\"2025-01-15\"'"),
            (
                #"{"expiration": "2025-02-30T00:00:00Z", "conditions": []}"#,
                "Invalid 'expiration' value: '\"2025-02-30T00:00:00Z\"'"
            ),
            (
                #"{"expiration": "2025-01-15T13:00:00", "conditions": []}"#,
                "Invalid 'expiration' value: '\"2025-01-15T13:00:00\"'"
            ),
            (#"{"expiration": 5, "conditions": []}"#, "Invalid 'expiration' value: '5'"),
            (
                #"{"expiration": "2025-01-15T13:00:00Z", "conditions": {}}"#,
                "Invalid 'conditions' value: must be a list."
            ),
            (
                #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [["matches", "$key", "a"]]}"#,
                "Invalid Condition: unknown operator 'matches'."
            ),
            (
                #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [["eq", "$key"]]}"#,
                #"Invalid Condition: 'eq' takes a field and a value: ["eq", "$key"]"#
            ),
            (#"{"expiration": "2025-01-15T13:00:00Z", "conditions": [[1, 2, 3]]}"#, "Invalid Condition: [1, 2, 3]"),
            (#"{"expiration": "2025-01-15T13:00:00Z", "conditions": ["eq"]}"#, #"Invalid Condition: "eq""#),
            (
                #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [{"a": "1", "b": "2"}]}"#,
                "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
            ),
            (
                #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [{"a": 1}]}"#,
                "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
            ),
            (
                #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [["content-length-range", "x", 5]]}"#,
                #"Invalid Condition: content-length-range takes two non-negative integers: ["content-length-range", "x", 5]"#
            ),
            (
                #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [["content-length-range", -1, 5]]}"#,
                #"Invalid Condition: content-length-range takes two non-negative integers: ["content-length-range", -1, 5]"#
            ),
        ]
    )
    func badJSON(json: String, detail: String) {
        #expect(throws: S3PostPolicyViolation.invalidPolicy(detail)) { try Self.policy(json) }
    }

    // MARK: Checks

    @Test("an expired policy is AccessDenied")
    func expired() throws {
        let policy = try S3PostPolicy(base64Policy: Self.botoPolicy)
        let violation = policy.checkFields(Self.botoFields, now: policy.expiration)
        #expect(violation == .expired)
        #expect(violation?.code == "AccessDenied")
        #expect(violation?.httpStatus == 403)
        #expect(violation?.message == "Invalid according to Policy: Policy expired.")
        #expect(policy.checkFields(Self.botoFields, now: policy.expiration.addingTimeInterval(-0.001)) == nil)
    }

    @Test("failing conditions are quoted as S3 renders them")
    func failedConditions() throws {
        let policy = try Self.policy(
            #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [{"bucket": "b"}, ["eq", "$key", "uploads/a"], ["starts-with", "$x-amz-meta-tag", "t\"q"], {"$acl": "private"}]}"#
        )
        let good = ["bucket": "b", "key": "uploads/a", "x-amz-meta-tag": "t\"q1", "acl": "private"]
        #expect(policy.checkFields(good, now: Self.botoNow) == nil)

        func failure(_ change: (inout [String: String]) -> Void) -> String? {
            var fields = good
            change(&fields)
            return policy.checkFields(fields, now: Self.botoNow)?.message
        }
        let prefix = "Invalid according to Policy: Policy Condition failed: "
        #expect(failure { $0["bucket"] = "other" } == prefix + #"["eq", "$bucket", "b"]"#)
        #expect(failure { $0["key"] = "uploads/b" } == prefix + #"["eq", "$key", "uploads/a"]"#)
        #expect(failure { $0["key"] = nil } == prefix + #"["eq", "$key", "uploads/a"]"#)
        #expect(failure { $0["x-amz-meta-tag"] = "x" } == prefix + #"["starts-with", "$x-amz-meta-tag", "t\"q"]"#)
        #expect(failure { $0["acl"] = "Private" } == prefix + #"["eq", "$acl", "private"]"#)
        let violation = policy.checkFields(["bucket": "x"], now: Self.botoNow)
        #expect(violation?.code == "AccessDenied")
        #expect(violation?.httpStatus == 403)
        #expect(violation?.extraElements.isEmpty == true)
    }

    @Test("field names are case-insensitive and `$` is optional")
    func caseInsensitiveNames() throws {
        let policy = try Self.policy(
            #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [["EQ", "$Key", "k"], ["starts-with", "X-Amz-Meta-A", ""], {"Success_Action_Status": "201"}]}"#
        )
        #expect(
            policy.checkFields(
                ["KEY": "k", "x-amz-meta-a": "anything", "success_action_status": "201"],
                now: Self.botoNow
            ) == nil
        )
        // starts-with "" accepts a missing field; eq "" would too.
        #expect(policy.checkFields(["key": "k", "success_action_status": "201"], now: Self.botoNow) == nil)
    }

    @Test("Content-Type starts-with applies to each of a comma-separated list")
    func contentTypeList() throws {
        let policy = try Self.policy(
            #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [["starts-with", "$Content-Type", "image/"]]}"#
        )
        #expect(policy.checkFields(["content-type": "image/png, image/jpeg"], now: Self.botoNow) == nil)
        #expect(policy.checkFields(["content-type": "image/png,image/jpeg"], now: Self.botoNow) == nil)
        #expect(
            policy.checkFields(["content-type": "image/png, text/plain"], now: Self.botoNow)?.message
                == #"Invalid according to Policy: Policy Condition failed: ["starts-with", "$Content-Type", "image/"]"#
        )
        let other = try Self.policy(
            #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [["starts-with", "$x-amz-meta-a", "a"]]}"#
        )
        #expect(other.checkFields(["x-amz-meta-a": "a, b"], now: Self.botoNow) == nil, "only Content-Type is a list")
    }

    @Test("every form field must be covered by a condition, with S3's exemptions")
    func extraFields() throws {
        let policy = try S3PostPolicy(base64Policy: Self.botoPolicy)
        var fields = Self.botoFields
        fields["x-ignore-anything"] = "1"
        fields["file"] = "ignored"
        #expect(policy.checkFields(fields, now: Self.botoNow) == nil)

        fields["x-amz-meta-b"] = "1"
        fields["acl"] = "private"
        let violation = policy.checkFields(fields, now: Self.botoNow)
        #expect(violation == .extraInputFields("acl"))
        #expect(violation?.message == "Invalid according to Policy: Extra input fields: acl")
        #expect(violation?.code == "AccessDenied")
        #expect(violation?.httpStatus == 403)
        fields["ACL"] = nil
        fields["acl"] = nil
        #expect(
            policy.checkFields(fields, now: Self.botoNow)?.message
                == "Invalid according to Policy: Extra input fields: x-amz-meta-b"
        )
    }

    @Test("content-length-range accepts numeric strings and every range must hold")
    func lengthRanges() throws {
        let policy = try Self.policy(
            #"{"expiration": "2025-01-15T13:00:00Z", "conditions": [["content-length-range", "10", "100"], ["content-length-range", 0, 50.0]]}"#
        )
        #expect(policy.checkContentLength(10) == nil)
        #expect(policy.checkContentLength(50) == nil)
        #expect(policy.checkContentLength(51) == .entityTooLarge(proposedSize: 51, maxSizeAllowed: 50))
        #expect(policy.checkContentLength(9) == .entityTooSmall(proposedSize: 9, minSizeAllowed: 10))
        #expect(policy.conditions[0].rendered == #"["content-length-range", 10, 100]"#)
        #expect(policy.conditions[0].fieldName == nil)
        #expect(policy.conditions[0].isSatisfied(by: [:]))
    }

    @Test("violations compare their extra elements")
    func violationEquality() {
        #expect(
            S3PostPolicyViolation.entityTooLarge(proposedSize: 2, maxSizeAllowed: 1)
                != .entityTooLarge(proposedSize: 3, maxSizeAllowed: 1)
        )
        #expect("\(S3PostPolicyViolation.expired)" == "403 AccessDenied: Invalid according to Policy: Policy expired.")
        #expect(S3PostPolicy.jsonString("a\"b\\c\n\u{1}é") == #""a\"b\\c\n\u0001é""#)
    }
}
