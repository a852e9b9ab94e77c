import Foundation
import MartletAWS

// Presigned S3 URLs per second: ours (S3Presigner) against botocore's generate_presigned_url in the
// same run, on the same inputs (a GET of a distinct key each time, 15-minute expiry, virtual host).
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
let elapsed = ContinuousClock.now - start
let ours = Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)

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
print(n / (time.perf_counter() - start), botocore.__version__)
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
guard process.terminationStatus == 0, let peer = Double(fields.first ?? "") else { fatalError("botocore run failed: \(text)") }

print("presigned S3 GET URLs per second (same inputs, one core each, same run)")
print("martlet S3Presigner      \(Int(ours))/s  (\(count) URLs)")
print("botocore \(fields.dropFirst().first.map(String.init)?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?")  \(Int(peer))/s  (\(botocoreCount) URLs)")
print("ratio: \(String(format: "%.1f", ours / peer))× botocore")
if sink == 42 { print("") }
