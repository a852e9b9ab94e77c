import Foundation
import MartletAWS
import MartletLocal
import NIOCore
import NIOHTTP1

// SigV4 per second, ours against botocore in the same run, on the same inputs:
// - presigned S3 URLs: S3Presigner against generate_presigned_url (a GET of a distinct key each
//   time, 15-minute expiry, virtual host);
// - signed requests: SigV4Signer.sign against SigV4Auth.add_auth (a DynamoDB call with a 300-byte
//   body, as the jobs pipeline sends them);
// - and, ours only, the local endpoint's verification of such a request (SignatureVerifier).
//
// usage: presign-bench --python PATH [--count N]

var python = "python3"
var count = 200_000
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--python": python = arguments.next()!
    case "--count": count = Int(arguments.next()!)!
    default: fatalError("unknown argument \(argument)")
    }
}

let credentials = Credentials(accessKeyID: "AKIDLOCALEXAMPLE", secretAccessKey: "localSecretKeyExample0123456789abcdefABCD")
let presigner = S3Presigner(credentials: credentials, region: "us-east-1")

// Warm up, then measure.
var sink = 0
for index in 0..<1000 { sink &+= try presigner.presignedURL(.get, bucket: "jobs-artifacts", key: "results/job-\(index)/output.json", expiresIn: 900).utf8.count }
let start = ContinuousClock.now
for index in 0..<count {
    sink &+= try presigner.presignedURL(.get, bucket: "jobs-artifacts", key: "results/job-\(index)/output.json", expiresIn: 900).utf8.count
}
let ours = perSecond(count, since: start)

func perSecond(_ count: Int, since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

// Signed requests: a DynamoDB UpdateItem-sized call.
let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "dynamodb")
let url = RequestURL(string: "http://127.0.0.1:4566/")!
let body = Array(String(repeating: "{\"TableName\":\"jobs\",\"Key\":{\"pk\":{\"S\":\"job#1\"}}}", count: 6).utf8.prefix(300))
let requestHeaders: [(name: String, value: String)] = [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "DynamoDB_20120810.UpdateItem")]
let signCount = count
for _ in 0..<1000 { sink &+= signer.sign(method: "POST", url: url, headers: requestHeaders, payload: .bytes(body), at: .now).count }
let signStart = ContinuousClock.now
for _ in 0..<signCount { sink &+= signer.sign(method: "POST", url: url, headers: requestHeaders, payload: .bytes(body), at: .now).count }
let oursSigned = perSecond(signCount, since: signStart)

// Verification, as the local endpoint does it for every request.
let signedHeaders = signer.sign(method: "POST", url: url, headers: requestHeaders, payload: .bytes(body), at: .now) + [("Content-Length", "\(body.count)")]
let request = HTTPServerRequest(method: .POST, uri: "/", headers: HTTPHeaders(signedHeaders.map { ($0.name, $0.value) }), body: ByteBuffer(bytes: body))
let verifier = SignatureVerifier(credentials: LocalCredentials(secrets: [credentials.accessKeyID: credentials.secretAccessKey]))
guard case .success = verifier.verify(request) else { fatalError("the signed request does not verify") }
let verifyStart = ContinuousClock.now
for _ in 0..<signCount { if case .success = verifier.verify(request) { sink &+= 1 } }
let oursVerified = perSecond(signCount, since: verifyStart)

// botocore, pure Python signer as `pip install boto3` gives it (the CRT signer off, as without awscrt).
let botocoreCount = max(2000, count / 50)
let script = """
import os, time
os.environ["BOTO_DISABLE_CRT"] = "true"
import boto3, botocore
from botocore.config import Config
client = boto3.session.Session(aws_access_key_id="AKIDLOCALEXAMPLE",
    aws_secret_access_key="localSecretKeyExample0123456789abcdefABCD", region_name="us-east-1"
).client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))
for i in range(200):
    client.generate_presigned_url("get_object", Params={"Bucket": "jobs-artifacts", "Key": f"results/job-{i}/output.json"}, ExpiresIn=900)
n = \(botocoreCount)
start = time.perf_counter()
for i in range(n):
    client.generate_presigned_url("get_object", Params={"Bucket": "jobs-artifacts", "Key": f"results/job-{i}/output.json"}, ExpiresIn=900)
presigned = n / (time.perf_counter() - start)
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
credentials = client._request_signer._credentials
body = bytes(\(body))
def signed():
    request = AWSRequest(method="POST", url="http://127.0.0.1:4566/", data=body,
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.UpdateItem"})
    SigV4Auth(credentials, "dynamodb", "us-east-1").add_auth(request)
    return request
for i in range(200): signed()
start = time.perf_counter()
for i in range(n): signed()
print(presigned, n / (time.perf_counter() - start), botocore.__version__)
"""
let process = Process()
process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
process.arguments = [python, "-c", script]
let output = Pipe()
process.standardOutput = output
try process.run()
let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
process.waitUntilExit()
let fields = text.split(separator: " ")
guard process.terminationStatus == 0, fields.count >= 3, let peer = Double(fields[0]), let peerSigned = Double(fields[1]) else {
    fatalError("botocore run failed: \(text)")
}
let version = fields[2].trimmingCharacters(in: .whitespacesAndNewlines)

print("SigV4 per second (same inputs, one core each, same run; botocore \(version), pure-Python signer)")
print("  presigned S3 GET URLs     martlet \(Int(ours))/s  botocore \(Int(peer))/s  ratio \(String(format: "%.1f", ours / peer))×")
print("  signed DynamoDB requests  martlet \(Int(oursSigned))/s  botocore \(Int(peerSigned))/s  ratio \(String(format: "%.1f", oursSigned / peerSigned))×")
print("  verified requests (local endpoint, ours only)  \(Int(oursVerified))/s  (\(String(format: "%.2f", 1e6 / oursVerified)) µs each)")
print("  (\(count) martlet calls each, \(botocoreCount) botocore calls each)")
if sink == 42 { print("") }
