#!/usr/bin/env python3
"""Conformance suite for an SQS (JSON protocol) + DynamoDB endpoint, run with boto3 and the AWS CLI.

The same suite runs against our emulator and against moto in server mode; `endpoint_diff.py`
then compares what the two returned (a differential check).

Usage:
    python scripts/lib/endpoint_suite.py --endpoint http://127.0.0.1:PORT
        [--name ours|moto] [--json OUT] [--only PATTERN] [--jobs N] [--aws PATH]

Prints `ok - NAME`, `not ok - NAME: WHY` (TAP-like) per check and ends with `N passed, M failed`;
exits non-zero when a check failed. With `--name moto`:
  * checks marked "ours only" (authentication) are skipped (`ok - NAME # SKIP ours only`);
  * checks listed in endpoint_diff.KNOWN_MOTO_DEVIATIONS that fail are reported as
    `not ok - NAME: WHY # TODO known moto deviation` and do not count as failures.
--json OUT writes {check name: observed result}: what the endpoint returned that both
implementations should agree on (bodies, receive counts, error codes, items), never ids,
timestamps, receipt handles or request ids. Resource names, the run's random suffix, account
ids and the endpoint are replaced by placeholders. A failed check records "failed": true
next to whatever it had observed; the key "_meta" describes the run.
--only PATTERN runs the checks whose name matches the regular expression (re.search).

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default `test` / `test`),
region us-east-1, `Config(retries={"max_attempts": 1})`. AWS CLI v1 calls use
.venv-peers/bin/aws (or --aws) with a throw-away config and credentials file.

Every check makes its own queues/tables (random suffix per run), so checks are independent and
run concurrently (--jobs, default 4); the checks that patch botocore's clock or change the
signing credentials run alone, after the others.

Expected error codes (as boto3 surfaces them in e.response["Error"]["Code"]) and their sources
-----------------------------------------------------------------------------------------------
aws.md = /work/shared/reference/aws.md (project reference; its tags: BC botocore models, BCP
botocore runtime, SQSDG SQS developer guide).

SQS (JSON protocol, awsQueryCompatible: botocore reports the legacy code from the
`x-amzn-query-error` header when present, aws.md 4.1; SQSDG "Interpreting Amazon SQS JSON API
responses" shows `x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender`):
  missing queue (GetQueueUrl, SendMessage to an unknown URL)
                           AWS.SimpleQueueService.NonExistentQueue   aws.md 4.1 table; SQSDG
  CreateQueue, same name, different attributes
                           QueueAlreadyExists (QueryErrorCode QueueNameExists)  aws.md 4.1 table;
                           API reference CreateQueue ("QueueNameExists")
  SendMessageBatch duplicate entry ids
                           AWS.SimpleQueueService.BatchEntryIdsNotDistinct      aws.md 4.1 table
  body over 1 MiB (1,048,577 bytes)
                           InvalidParameterValue, "Message must be shorter than 1048576 bytes"
                           limit: aws.md 4.3 (BC MaximumMessageSize 1,024-1,048,576, default
                           1 MiB since 2025); code: SQS API reference Common Errors
                           (InvalidParameterValue, 400) and an AWS response quoted in a
                           localstack/localstack issue (2022, then "shorter than 262144 bytes")
  body with a character outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF
                           InvalidMessageContents   aws.md 4.3 (BC SendMessage docs); API ref
  invalid receipt handle in DeleteMessageBatch (per-entry Failed code)
                           ReceiptHandleIsInvalid   aws.md 4.1 table; BC DeleteMessageBatch
  unknown operation (X-Amz-Target AmazonSQS.NoSuchOp)
                           UnknownOperationException or InvalidAction, HTTP 400: JSON-protocol
                           (Coral) services answer `UnknownOperationException`; SQS's Common
                           Errors list `InvalidAction` ("The action or operation requested is
                           invalid", 400), which is what the query-compatible header would carry.
                           No AWS capture was found for SQS JSON, so either is accepted.
  malformed JSON body      SerializationException, HTTP 400 (Coral JSON-protocol framework
                           error; no SQS-specific capture found) [UNVERIFIED for SQS]
  wrong secret key         SignatureDoesNotMatch, HTTP 403: SQS query-protocol captures (boto
                           issues #1573, aws-cli #5341: `<Code>SignatureDoesNotMatch</Code>`);
                           the JSON protocol keeps the legacy codes through x-amzn-query-error.
  unknown access key       InvalidClientTokenId, HTTP 403: SQS API reference Common Errors
                           ("The X.509 certificate or AWS access key ID provided does not exist
                           in our records", 403); SQS captures "The security token included in
                           the request is invalid" (aws-sdk-php-symfony #41, aws-sdk-js-v3 #6715).
DynamoDB (JSON protocol, `__type` suffix after '#', aws.md 6):
  failed condition         ConditionalCheckFailedException   aws.md 6; DynamoDB DG error handling
  missing table            ResourceNotFoundException         aws.md 6; DynamoDB DG error handling
  bad expression (syntax, undefined/unused :value, unescaped reserved word)
                           ValidationException               aws.md 6; DynamoDB DG expressions
  wrong secret key         InvalidSignatureException (`com.amazon.coral.service#...`), HTTP 400:
                           aws.md 6; captures "The request signature we calculated does not match
                           the signature you provided" (gist myitcv/9093705; "DynamoDB Applied
                           Design Patterns", error handling) [3P]
  unknown access key       UnrecognizedClientException, HTTP 400: DynamoDB DG "Error messages and
                           codes" ("The Access Key ID or security token is invalid")
  request dated 20 min ago InvalidSignatureException, message starting "Signature expired"
                           ("Signature expired: <request date> is now earlier than <limit> ..."):
                           widely reported DynamoDB behaviour, not found in the AWS docs here
                           [UNVERIFIED]; the 15-minute window is the Common Errors "RequestExpired"
                           text (DynamoDB/SQS API reference).
"""
import argparse
import base64
import concurrent.futures
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from decimal import Decimal
from unittest import mock

# With awscrt importable (the AWS CLI brings it), botocore signs with CRT signers, which ignore a
# patched botocore.auth.get_current_datetime. The expired-signature check needs the Python signer.
os.environ["BOTO_DISABLE_CRT"] = "true"

import boto3  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ next to the scripts
from endpoint_diff import KNOWN_MOTO_DEVIATIONS  # noqa: E402

REGION = "us-east-1"
MIB = 1024 * 1024


# --- Small helpers ---------------------------------------------------------------------------------

class CheckFailed(Exception):
    pass


def len32(data: bytes) -> bytes:
    return struct.pack(">I", len(data))


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_of_message_attributes(attributes: dict) -> str:
    """MD5OfMessageAttributes as aws.md 4.3 describes it (AWS SDK for Java v1 algorithm): for each
    attribute sorted by name, len32(name) name len32(type) type, then 0x01 len32(value) value for
    String/Number types or 0x02 len32(bytes) bytes for Binary types."""
    buffer = b""
    for name in sorted(attributes):
        attribute = attributes[name]
        data_type = attribute["DataType"].encode()
        buffer += len32(name.encode()) + name.encode() + len32(data_type) + data_type
        if "StringValue" in attribute:
            value = attribute["StringValue"].encode()
            buffer += b"\x01" + len32(value) + value
        else:
            value = attribute["BinaryValue"]
            if isinstance(value, str):
                value = base64.b64decode(value)
            buffer += b"\x02" + len32(value) + value
    return md5_hex(buffer)


# Vectors from aws.md 4.3 / shared/vectors/sigv4.json (`sqs/md5-of-message-body-and-attributes`).
assert md5_hex(b"hello") == "5d41402abc4b2a76b9719d911017c592"
assert md5_of_message_attributes({"k": {"DataType": "String", "StringValue": "v"}}) == "0a77b0642718c3d9dd47090567d11e0d"


def error_code(call, *args, **kwargs):
    """Runs a boto3 call expected to fail; returns (code, http status, error dict, response)."""
    try:
        call(*args, **kwargs)
    except ClientError as e:
        return (e.response["Error"].get("Code"), e.response["ResponseMetadata"].get("HTTPStatusCode"),
                e.response["Error"], e.response)
    raise CheckFailed(f"{getattr(call, '__name__', call)} succeeded; an error was expected")


def norm_av(value):
    """A DynamoDB AttributeValue (or item) with sets sorted, so it compares independent of order."""
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            if key in ("SS", "NS") and isinstance(inner, list):
                out[key] = sorted(inner, key=lambda n: Decimal(n) if key == "NS" else n)
            elif key == "BS" and isinstance(inner, list):
                out[key] = sorted(base64.b64encode(b).decode() if isinstance(b, bytes) else b for b in inner)
            elif key == "B" and isinstance(inner, bytes):
                out[key] = base64.b64encode(inner).decode()
            else:
                out[key] = norm_av(inner)
        return out
    if isinstance(value, list):
        return [norm_av(v) for v in value]
    return value


def jsonable(value):
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


# --- Run context ----------------------------------------------------------------------------------------

class Run:
    def __init__(self, endpoint, name, aws_cli):
        self.endpoint = endpoint.rstrip("/")
        self.name = name
        self.aws_cli = aws_cli
        self.suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
        self.access_key = os.environ.get("AWS_ACCESS_KEY_ID") or "test"
        self.secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY") or "test"
        self.session_token = os.environ.get("AWS_SESSION_TOKEN") or None
        self.sqs = self.client("sqs")
        self.ddb = self.client("dynamodb")
        self.cli_dir = tempfile.mkdtemp(prefix="endpoint-suite-cli-")
        with open(os.path.join(self.cli_dir, "config"), "w") as f:
            f.write(f"[default]\nregion = {REGION}\noutput = json\n")
        with open(os.path.join(self.cli_dir, "credentials"), "w") as f:
            f.write(f"[default]\naws_access_key_id = {self.access_key}\naws_secret_access_key = {self.secret_key}\n")
            if self.session_token:
                f.write(f"aws_session_token = {self.session_token}\n")
        self._counter = 0
        self._lock = threading.Lock()

    def client(self, service, access_key=None, secret_key=None):
        session = boto3.session.Session(
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            aws_session_token=None if access_key else self.session_token,
            region_name=REGION)
        return session.client(service, endpoint_url=self.endpoint, config=Config(
            retries={"max_attempts": 1}, connect_timeout=10, read_timeout=60, max_pool_connections=32))

    def unique(self, stem):
        with self._lock:
            self._counter += 1
            return f"es-{stem}-{self.suffix}-{self._counter}"

    def normalize(self, value):
        """Placeholders for what legitimately differs between runs and implementations."""
        if isinstance(value, str):
            value = value.replace(self.endpoint, "{endpoint}")
            value = re.sub(r"es-([a-z0-9-]+?)-" + self.suffix + r"-\d+", r"{\1}", value)
            value = re.sub(r"\b\d{12}\b", "{account}", value)
            return value
        if isinstance(value, dict):
            return {self.normalize(k): self.normalize(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.normalize(v) for v in value]
        return value

    # AWS CLI v1 with a config of its own: no profile, pager or retry settings from the user leak in.
    def aws(self, *args, timeout=60):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") or k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
        env.update({
            "AWS_CONFIG_FILE": os.path.join(self.cli_dir, "config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.cli_dir, "credentials"),
            "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION, "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
        })
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        cmd = [self.aws_cli, "--endpoint-url", self.endpoint, "--region", REGION, "--output", "json", *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise CheckFailed(f"`aws {' '.join(args[:2])}` exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    # A raw, SigV4-signed JSON-protocol POST (for requests boto3 cannot make).
    def raw(self, service, target, body: bytes, credentials=None):
        headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target}
        if service == "sqs":
            headers["x-amzn-query-mode"] = "true"   # what botocore adds for query-compatible services
        request = AWSRequest(method="POST", url=self.endpoint + "/", data=body, headers=headers)
        SigV4Auth(credentials or Credentials(self.access_key, self.secret_key, self.session_token),
                  service, REGION).add_auth(request)
        prepared = request.prepare()
        http_request = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST")
        try:
            with urllib.request.urlopen(http_request, timeout=30) as response:
                status, response_headers, data = response.status, response.headers, response.read()
        except urllib.error.HTTPError as e:
            status, response_headers, data = e.code, e.headers, e.read()
        # The code as botocore would surface it: the legacy code from x-amzn-query-error when
        # present (BCP), else the `__type` text after '#'.
        code = None
        try:
            parsed = json.loads(data or b"{}")
            type_ = parsed.get("__type") or parsed.get("code") or parsed.get("Code")
            if type_:
                code = type_.rsplit("#", 1)[-1]
        except ValueError:
            parsed = None
        query_error = response_headers.get("x-amzn-query-error")
        if query_error:
            code = query_error.split(";", 1)[0]
        return status, code, parsed


class Ctx:
    """Per-check state: the observed result and the resources to delete afterwards."""

    def __init__(self, run):
        self.run = run
        self.obs = {}
        self.cleanups = []

    def expect(self, condition, why):
        if not condition:
            raise CheckFailed(why)

    def equal(self, actual, expected, what):
        if actual != expected:
            raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")

    def code_in(self, code, allowed, what):
        allowed = (allowed,) if isinstance(allowed, str) else tuple(allowed)
        if code not in allowed:
            raise CheckFailed(f"{what}: expected error code {' or '.join(allowed)}, got {code!r}")

    # SQS --------------------------------------------------------------------------------------
    def queue(self, stem="q", attributes=None):
        name = self.run.unique(stem)
        kwargs = {"QueueName": name}
        if attributes:
            kwargs["Attributes"] = attributes
        url = self.run.sqs.create_queue(**kwargs)["QueueUrl"]
        self.cleanups.append(lambda: self.run.sqs.delete_queue(QueueUrl=url))
        return url

    def queue_arn(self, url):
        return self.run.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def receive(self, url, **kwargs):
        kwargs.setdefault("MessageSystemAttributeNames", ["ApproximateReceiveCount"])
        return self.run.sqs.receive_message(QueueUrl=url, **kwargs).get("Messages", [])

    def drain(self, url, expected, wait=5.0):
        """Receives until `expected` messages arrived or `wait` seconds passed."""
        got, deadline = [], time.monotonic() + wait
        while len(got) < expected and time.monotonic() < deadline:
            got += self.receive(url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return got

    def queue_counts(self, url):
        attrs = self.run.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return {k: int(v) for k, v in attrs.items()}

    # DynamoDB ---------------------------------------------------------------------------------
    def table(self, stem="t", ttl_attribute=None):
        name = self.run.unique(stem)
        self.run.ddb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST")
        self.cleanups.append(lambda: self.run.ddb.delete_table(TableName=name))
        self.wait_active(name)
        if ttl_attribute:
            self.run.ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": ttl_attribute})
        return name

    def wait_active(self, name, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            status = self.run.ddb.describe_table(TableName=name)["Table"]["TableStatus"]
            if status == "ACTIVE":
                return
            if time.monotonic() > deadline:
                raise CheckFailed(f"table {name} still {status} after {timeout} s")
            time.sleep(0.2)

    def item(self, table, pk, sk, consistent=True, **kwargs):
        return self.run.ddb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                     ConsistentRead=consistent, **kwargs).get("Item")


# --- Check registry ------------------------------------------------------------------------------------

CHECKS = []


def check(name, ours_only=False, serial=False):
    def register(function):
        CHECKS.append({"name": name, "fn": function, "ours_only": ours_only, "serial": serial})
        return function
    return register


# === SQS ==================================================================================================

@check("sqs CreateQueue, idempotent re-create, differing attributes -> QueueAlreadyExists")
def _(c):
    sqs = c.run.sqs
    name = c.run.unique("create")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    c.cleanups.append(lambda: sqs.delete_queue(QueueUrl=url))
    c.expect(url.endswith("/" + name), f"QueueUrl {url!r} does not end with /{name}")
    again = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    c.equal(again, url, "QueueUrl of the idempotent re-create")
    code, status, error, _r = error_code(sqs.create_queue, QueueName=name, Attributes={"VisibilityTimeout": "8"})
    c.obs = {"url_ends_with_name": True, "recreate_same_url": True, "differing_code": code,
             "differing_query_code": error.get("QueryErrorCode"), "differing_status": status}
    c.code_in(code, ("QueueAlreadyExists", "QueueNameExists"), "re-create with a different VisibilityTimeout")


@check("sqs GetQueueUrl, missing queue -> AWS.SimpleQueueService.NonExistentQueue")
def _(c):
    url = c.queue("geturl")
    name = url.rsplit("/", 1)[-1]
    got = c.run.sqs.get_queue_url(QueueName=name)["QueueUrl"]
    c.equal(got, url, "GetQueueUrl")
    code, status, error, _r = error_code(c.run.sqs.get_queue_url, QueueName=c.run.unique("missing"))
    c.obs = {"same_url": True, "missing_code": code, "missing_query_code": error.get("QueryErrorCode"),
             "missing_status": status}
    c.equal(code, "AWS.SimpleQueueService.NonExistentQueue", "GetQueueUrl of a missing queue")


@check("sqs GetQueueAttributes/SetQueueAttributes (VisibilityTimeout, DelaySeconds, RedrivePolicy)")
def _(c):
    sqs = c.run.sqs
    dlq = c.queue("attrs-dlq")
    url = c.queue("attrs", {"VisibilityTimeout": "45"})
    names = ["VisibilityTimeout", "DelaySeconds", "RedrivePolicy"]
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    c.obs["before"] = before
    c.equal(before.get("VisibilityTimeout"), "45", "VisibilityTimeout set at CreateQueue")
    c.equal(before.get("DelaySeconds"), "0", "default DelaySeconds")
    c.expect("RedrivePolicy" not in before, f"RedrivePolicy present before being set: {before}")
    dlq_arn = c.queue_arn(dlq)
    c.expect(dlq_arn.startswith("arn:aws:sqs:") and dlq_arn.endswith(":" + dlq.rsplit("/", 1)[-1]),
             f"QueueArn {dlq_arn!r}")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={
        "VisibilityTimeout": "12", "DelaySeconds": "3",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 4})})
    after = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    policy = json.loads(after.get("RedrivePolicy", "{}"))
    c.obs["after"] = {"VisibilityTimeout": after.get("VisibilityTimeout"), "DelaySeconds": after.get("DelaySeconds"),
                      "RedrivePolicy": {"deadLetterTargetArn": policy.get("deadLetterTargetArn"),
                                        "maxReceiveCount": int(policy.get("maxReceiveCount", -1))}}
    c.equal(after.get("VisibilityTimeout"), "12", "VisibilityTimeout after SetQueueAttributes")
    c.equal(after.get("DelaySeconds"), "3", "DelaySeconds after SetQueueAttributes")
    c.equal(policy.get("deadLetterTargetArn"), dlq_arn, "RedrivePolicy.deadLetterTargetArn")
    c.equal(int(policy.get("maxReceiveCount", -1)), 4, "RedrivePolicy.maxReceiveCount")
    everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    for key in ("QueueArn", "CreatedTimestamp", "LastModifiedTimestamp", "MaximumMessageSize",
                "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "ApproximateNumberOfMessages"):
        c.expect(key in everything, f"GetQueueAttributes All lacks {key}: {sorted(everything)}")
    c.obs["all_defaults"] = {k: everything.get(k) for k in ("MaximumMessageSize", "MessageRetentionPeriod",
                                                             "ReceiveMessageWaitTimeSeconds")}
    c.equal(everything.get("MaximumMessageSize"), str(MIB), "default MaximumMessageSize (1 MiB)")
    c.equal(everything.get("MessageRetentionPeriod"), "345600", "default MessageRetentionPeriod")


@check("sqs SendMessage with message attributes: MD5OfMessageBody and MD5OfMessageAttributes")
def _(c):
    url = c.queue("md5")
    body = "héllo wörld ✓ {\"json\": true}"
    attributes = {
        "text": {"DataType": "String", "StringValue": "render ✓"},
        "count": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
        "custom": {"DataType": "String.custom", "StringValue": "x"},
    }
    sent = c.run.sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    want_body, want_attrs = md5_hex(body.encode()), md5_of_message_attributes(attributes)
    c.obs["send"] = {"MD5OfMessageBody": sent.get("MD5OfMessageBody"),
                     "MD5OfMessageAttributes": sent.get("MD5OfMessageAttributes")}
    c.equal(sent.get("MD5OfMessageBody"), want_body, "SendMessage MD5OfMessageBody")
    c.equal(sent.get("MD5OfMessageAttributes"), want_attrs, "SendMessage MD5OfMessageAttributes")
    messages = c.receive(url, MessageAttributeNames=["All"], WaitTimeSeconds=2)
    c.equal(len(messages), 1, "messages received")
    m = messages[0]
    c.obs["receive"] = {"Body": m.get("Body"), "MD5OfBody": m.get("MD5OfBody"),
                        "MD5OfMessageAttributes": m.get("MD5OfMessageAttributes"),
                        "MessageAttributes": jsonable(m.get("MessageAttributes"))}
    c.equal(m.get("Body"), body, "received Body")
    c.equal(m.get("MD5OfBody"), want_body, "received MD5OfBody")
    c.equal(m.get("MD5OfMessageAttributes"), want_attrs, "received MD5OfMessageAttributes")
    c.equal(m.get("MessageAttributes"), attributes, "received MessageAttributes")


@check("sqs SendMessageBatch: successful and failed entries; duplicate ids -> BatchEntryIdsNotDistinct")
def _(c):
    sqs = c.run.sqs
    url = c.queue("batch")
    result = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "good-1", "MessageBody": "batch one"},
        {"Id": "good_2", "MessageBody": "batch two"},
        # DelaySeconds outside 0-900 fails this entry only [per-entry failure: UNVERIFIED against AWS]
        {"Id": "bad", "MessageBody": "never", "DelaySeconds": 1000},
    ])
    successful = sorted(result.get("Successful", []), key=lambda e: e["Id"])
    failed = result.get("Failed", [])
    c.obs["successful"] = [{"Id": e["Id"], "MD5OfMessageBody": e.get("MD5OfMessageBody")} for e in successful]
    c.obs["failed"] = [{"Id": e.get("Id"), "SenderFault": e.get("SenderFault"), "Code": e.get("Code")} for e in failed]
    c.equal([e["Id"] for e in successful], ["good-1", "good_2"], "Successful ids")
    for e in successful:
        c.equal(e.get("MD5OfMessageBody"), md5_hex(("batch one" if e["Id"] == "good-1" else "batch two").encode()),
                f"MD5OfMessageBody of {e['Id']}")
    c.equal([e.get("Id") for e in failed], ["bad"], "Failed ids")
    c.equal(failed[0].get("SenderFault"), True, "Failed SenderFault")
    c.expect(failed[0].get("Code"), "Failed entry has no Code")
    code, status, error, _r = error_code(sqs.send_message_batch, QueueUrl=url, Entries=[
        {"Id": "same", "MessageBody": "a"}, {"Id": "same", "MessageBody": "b"}])
    c.obs["duplicate_code"], c.obs["duplicate_status"] = code, status
    c.equal(code, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "duplicate batch entry ids")
    bodies = sorted(m["Body"] for m in c.drain(url, 2))
    c.obs["bodies"] = bodies
    c.equal(bodies, ["batch one", "batch two"], "bodies in the queue (the duplicate-id batch sends nothing)")


@check("sqs ReceiveMessage MaxNumberOfMessages")
def _(c):
    url = c.queue("max")
    c.run.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(5)])
    time.sleep(0.2)
    first = c.receive(url, MaxNumberOfMessages=3, WaitTimeSeconds=2)
    c.expect(1 <= len(first) <= 3, f"MaxNumberOfMessages=3 returned {len(first)} messages")
    rest = c.drain(url, 5 - len(first))
    bodies = sorted(m["Body"] for m in first + rest)
    c.obs = {"first_receive_count": len(first), "all_bodies": bodies,
             "receive_counts": sorted(m["Attributes"]["ApproximateReceiveCount"] for m in first + rest)}
    c.equal(bodies, [f"m{i}" for i in range(5)], "all bodies, each exactly once")
    code, status, _e, _r = error_code(c.run.sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=11)
    c.obs["max_11_code"] = code
    c.expect(status == 400, f"MaxNumberOfMessages=11: HTTP {status}")


@check("sqs visibility timeout: redelivery after VisibilityTimeout=1, ApproximateReceiveCount increments")
def _(c):
    url = c.queue("vis")
    c.run.sqs.send_message(QueueUrl=url, MessageBody="visible again")
    first = c.receive(url, VisibilityTimeout=1, WaitTimeSeconds=2)
    received_at = time.monotonic()
    c.equal(len(first), 1, "first receive")
    hidden = c.receive(url)
    if time.monotonic() - received_at < 0.9:   # only meaningful while the timeout surely runs
        c.equal(len(hidden), 0, "messages while in flight")
    time.sleep(max(0.0, 1.5 - (time.monotonic() - received_at)))
    second = c.receive(url, VisibilityTimeout=1, WaitTimeSeconds=3)
    c.equal(len(second), 1, "receive after the visibility timeout")
    c.obs = {"bodies": [first[0]["Body"], second[0]["Body"]],
             "receive_counts": [first[0]["Attributes"].get("ApproximateReceiveCount"),
                                second[0]["Attributes"].get("ApproximateReceiveCount")]}
    c.equal(second[0]["Body"], "visible again", "redelivered body")
    c.equal(c.obs["receive_counts"], ["1", "2"], "ApproximateReceiveCount")
    c.expect(second[0]["ReceiptHandle"], "no receipt handle")


@check("sqs ChangeMessageVisibility to 0 makes the message visible at once")
def _(c):
    url = c.queue("chvis")
    c.run.sqs.send_message(QueueUrl=url, MessageBody="change me")
    first = c.receive(url, VisibilityTimeout=30, WaitTimeSeconds=2)
    c.equal(len(first), 1, "first receive")
    c.run.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = c.receive(url, WaitTimeSeconds=2)
    c.obs = {"bodies": [m["Body"] for m in again],
             "receive_counts": [m["Attributes"].get("ApproximateReceiveCount") for m in again]}
    c.equal(c.obs["bodies"], ["change me"], "bodies after ChangeMessageVisibility 0")
    c.equal(c.obs["receive_counts"], ["2"], "ApproximateReceiveCount")


@check("sqs DeleteMessage removes the message")
def _(c):
    url = c.queue("del")
    c.run.sqs.send_message(QueueUrl=url, MessageBody="delete me")
    got = c.receive(url, VisibilityTimeout=1, WaitTimeSeconds=2)
    c.equal(len(got), 1, "receive")
    response = c.run.sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    time.sleep(1.5)   # past the visibility timeout: an undeleted message would be back
    after = c.receive(url, WaitTimeSeconds=1)
    counts = c.queue_counts(url)
    c.obs = {"delete_response_keys": sorted(k for k in response if k != "ResponseMetadata"),
             "after_delete": [m["Body"] for m in after],
             "visible": counts.get("ApproximateNumberOfMessages"),
             "not_visible": counts.get("ApproximateNumberOfMessagesNotVisible")}
    c.equal(c.obs["after_delete"], [], "messages after DeleteMessage")
    c.equal((c.obs["visible"], c.obs["not_visible"]), (0, 0), "ApproximateNumberOfMessages / NotVisible")


@check("sqs DeleteMessageBatch: successful entries and an invalid receipt handle")
def _(c):
    url = c.queue("delbatch")
    c.run.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"d{i}"} for i in range(3)])
    got = c.drain(url, 3)
    c.equal(len(got), 3, "received")
    entries = [{"Id": f"e{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
    entries.append({"Id": "bogus", "ReceiptHandle": "not-a-receipt-handle"})
    result = c.run.sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    c.obs = {"successful": sorted(e["Id"] for e in result.get("Successful", [])),
             "failed": [{"Id": e.get("Id"), "Code": e.get("Code"), "SenderFault": e.get("SenderFault")}
                        for e in result.get("Failed", [])]}
    c.equal(c.obs["successful"], ["e0", "e1", "e2"], "Successful ids")
    c.equal([e["Id"] for e in c.obs["failed"]], ["bogus"], "Failed ids")
    c.equal(c.obs["failed"][0]["Code"], "ReceiptHandleIsInvalid", "Failed code of the bogus handle")
    counts = c.queue_counts(url)
    c.obs["left"] = counts.get("ApproximateNumberOfMessages", 0) + counts.get("ApproximateNumberOfMessagesNotVisible", 0)
    c.equal(c.obs["left"], 0, "messages left")


@check("sqs DelaySeconds: a delayed message stays invisible until the delay passes")
def _(c):
    url = c.queue("delay")
    sent_at = time.monotonic()
    c.run.sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
    early = c.receive(url)
    early_elapsed = time.monotonic() - sent_at
    counts = c.queue_counts(url)
    if early_elapsed < 1.8:
        c.equal(len(early), 0, "messages received before the delay passed")
    late = c.receive(url, WaitTimeSeconds=5) or c.receive(url, WaitTimeSeconds=3)
    late_elapsed = time.monotonic() - sent_at
    c.obs = {"early": len(early) if early_elapsed < 1.8 else 0, "late_bodies": [m["Body"] for m in late],
             "delayed_count_right_after_send": counts.get("ApproximateNumberOfMessagesDelayed")}
    c.equal(c.obs["late_bodies"], ["later"], "body after the delay")
    c.expect(late_elapsed >= 1.8, f"delayed message arrived after {late_elapsed:.2f} s, before its 2 s delay")


@check("sqs long polling returns as soon as a message arrives")
def _(c):
    url = c.queue("longpoll")
    sender = threading.Timer(0.5, lambda: c.run.sqs.send_message(QueueUrl=url, MessageBody="wake up"))
    started = time.monotonic()
    sender.start()
    try:
        got = c.receive(url, WaitTimeSeconds=10)
    finally:
        sender.join()
    elapsed = time.monotonic() - started
    if not got:   # a receive that ended early without the message: one more try, still timed
        got = c.receive(url, WaitTimeSeconds=5)
        elapsed = time.monotonic() - started
    c.obs = {"bodies": [m["Body"] for m in got], "returned_before_wait_time": elapsed < 6}
    c.equal(c.obs["bodies"], ["wake up"], "long-poll result")
    c.expect(elapsed < 6, f"long poll with WaitTimeSeconds=10 returned after {elapsed:.2f} s (message sent at 0.5 s)")


@check("sqs long polling an empty queue returns empty after about WaitTimeSeconds")
def _(c):
    url = c.queue("emptypoll")
    started = time.monotonic()
    got = c.receive(url, WaitTimeSeconds=1)
    elapsed = time.monotonic() - started
    c.obs = {"messages": len(got), "waited": 0.9 <= elapsed < 6}
    c.equal(len(got), 0, "messages")
    c.expect(0.9 <= elapsed < 6, f"WaitTimeSeconds=1 on an empty queue returned after {elapsed:.2f} s")


@check("sqs PurgeQueue deletes the messages")
def _(c):
    url = c.queue("purge")
    c.run.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"p{i}"} for i in range(3)])
    response = c.run.sqs.purge_queue(QueueUrl=url)
    deadline, got = time.monotonic() + 5, None
    while time.monotonic() < deadline:
        counts = c.queue_counts(url)
        if counts.get("ApproximateNumberOfMessages") == 0:
            break
        time.sleep(0.2)
    got = c.receive(url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    c.obs = {"response_keys": sorted(k for k in response if k != "ResponseMetadata"),
             "after_purge": [m["Body"] for m in got], "visible": counts.get("ApproximateNumberOfMessages")}
    c.equal(c.obs["after_purge"], [], "messages after PurgeQueue")
    c.run.sqs.send_message(QueueUrl=url, MessageBody="after purge")
    c.equal([m["Body"] for m in c.drain(url, 1)], ["after purge"], "a message sent after the purge")


@check("sqs redrive to a dead-letter queue after maxReceiveCount")
def _(c):
    dlq = c.queue("redrive-dlq")
    url = c.queue("redrive", {"VisibilityTimeout": "1", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": c.queue_arn(dlq), "maxReceiveCount": 2})})
    c.run.sqs.send_message(QueueUrl=url, MessageBody="poison")
    counts = []
    for attempt in range(2):
        got = c.receive(url, WaitTimeSeconds=3)
        c.equal(len(got), 1, f"delivery {attempt + 1} of 2")
        counts.append(got[0]["Attributes"].get("ApproximateReceiveCount"))
        time.sleep(1.5)
    third = c.receive(url, WaitTimeSeconds=1)
    moved = c.drain(dlq, 1, wait=6)
    c.obs = {"source_receive_counts": counts, "third_receive": [m["Body"] for m in third],
             "dlq_bodies": [m["Body"] for m in moved]}
    c.equal(counts, ["1", "2"], "ApproximateReceiveCount of the two deliveries")
    c.equal(c.obs["third_receive"], [], "source queue after maxReceiveCount receives")
    c.equal(c.obs["dlq_bodies"], ["poison"], "dead-letter queue")


@check("sqs message of 1 MiB accepted, 1 MiB + 1 byte rejected (InvalidParameterValue)")
def _(c):
    url = c.queue("size")
    ok = c.run.sqs.send_message(QueueUrl=url, MessageBody="a" * MIB)
    c.equal(ok.get("MD5OfMessageBody"), md5_hex(b"a" * MIB), "MD5 of the 1 MiB message")
    code, status, error, _r = error_code(c.run.sqs.send_message, QueueUrl=url, MessageBody="a" * (MIB + 1))
    c.obs = {"exactly_1_mib": "accepted", "over_code": code, "over_status": status,
             "over_message_names_limit": "1048576" in str(error.get("Message"))}
    c.equal(code, "InvalidParameterValue", "1,048,577-byte message")


@check("sqs invalid characters in the body -> InvalidMessageContents")
def _(c):
    url = c.queue("chars")
    results = {}
    for label, body in (("U+0000", "a\u0000b"), ("U+0008", "bell\u0008"), ("U+FFFE", "x\ufffe")):
        try:
            c.run.sqs.send_message(QueueUrl=url, MessageBody=body)
            results[label] = "accepted"
        except ClientError as e:
            results[label] = e.response["Error"]["Code"]
    ok = c.run.sqs.send_message(QueueUrl=url, MessageBody="tab\tnewline\ncr\r emoji \U0001F600")
    results["allowed characters"] = "accepted" if ok.get("MessageId") else "?"
    c.obs = results
    for label in ("U+0000", "U+0008", "U+FFFE"):
        c.equal(results[label], "InvalidMessageContents", f"body with {label}")


@check("sqs SendMessage to an unknown queue URL -> AWS.SimpleQueueService.NonExistentQueue")
def _(c):
    url = c.queue("known")
    unknown = url.rsplit("/", 1)[0] + "/" + c.run.unique("unknown")
    code, status, error, _r = error_code(c.run.sqs.send_message, QueueUrl=unknown, MessageBody="x")
    code2, _s, _e, _r = error_code(c.run.sqs.receive_message, QueueUrl=unknown)
    c.obs = {"send_code": code, "send_status": status, "query_code": error.get("QueryErrorCode"), "receive_code": code2}
    c.equal(code, "AWS.SimpleQueueService.NonExistentQueue", "SendMessage")
    c.equal(code2, "AWS.SimpleQueueService.NonExistentQueue", "ReceiveMessage")


@check("sqs unknown operation (X-Amz-Target AmazonSQS.NoSuchOp) -> UnknownOperationException/InvalidAction")
def _(c):
    status, code, _body = c.run.raw("sqs", "AmazonSQS.NoSuchOp", b"{}")
    c.obs = {"status": status, "code": code}
    c.equal(status, 400, "HTTP status")
    c.code_in(code, ("UnknownOperationException", "InvalidAction"), "unknown operation")


@check("sqs malformed JSON body -> SerializationException")
def _(c):
    c.queue("malformed")
    status, code, _body = c.run.raw("sqs", "AmazonSQS.ListQueues", b'{"QueueNamePrefix": ')
    c.obs = {"status": status, "code": code}
    c.equal(status, 400, "HTTP status")
    c.code_in(code, ("SerializationException",), "malformed JSON")


@check("sqs AWS CLI send-message / receive-message round trip")
def _(c):
    url = c.queue("cli")
    body = "from the CLI ✓"
    sent = c.run.aws("sqs", "send-message", "--queue-url", url, "--message-body", body,
                     "--message-attributes", '{"kind":{"DataType":"String","StringValue":"cli"}}')
    c.obs["send"] = {"MD5OfMessageBody": sent.get("MD5OfMessageBody"),
                     "MD5OfMessageAttributes": sent.get("MD5OfMessageAttributes")}
    c.equal(sent.get("MD5OfMessageBody"), md5_hex(body.encode()), "MD5OfMessageBody")
    received = c.run.aws("sqs", "receive-message", "--queue-url", url, "--wait-time-seconds", "5",
                         "--message-attribute-names", "All", "--attribute-names", "ApproximateReceiveCount")
    messages = received.get("Messages", [])
    c.equal(len(messages), 1, "messages received by the CLI")
    m = messages[0]
    c.obs["receive"] = {"Body": m.get("Body"), "MD5OfBody": m.get("MD5OfBody"),
                        "MessageAttributes": m.get("MessageAttributes"),
                        "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount")}
    c.equal(m.get("Body"), body, "Body")
    c.equal(m.get("MessageAttributes"), {"kind": {"DataType": "String", "StringValue": "cli"}}, "MessageAttributes")
    c.run.aws("sqs", "delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])


# === DynamoDB =============================================================================================

@check("ddb CreateTable (HASH+RANGE, PAY_PER_REQUEST) and DescribeTable (ACTIVE, key schema)")
def _(c):
    name = c.table("create")
    table = c.run.ddb.describe_table(TableName=name)["Table"]
    c.obs = {
        "TableName": table.get("TableName"), "TableStatus": table.get("TableStatus"),
        "KeySchema": table.get("KeySchema"),
        "AttributeDefinitions": sorted(table.get("AttributeDefinitions", []), key=lambda a: a["AttributeName"]),
        "BillingMode": table.get("BillingModeSummary", {}).get("BillingMode"),
        "ItemCount": table.get("ItemCount"),
        "arn_suffix": (table.get("TableArn") or "").split(":table/")[-1],
    }
    c.equal(table.get("TableStatus"), "ACTIVE", "TableStatus")
    c.equal(table.get("KeySchema"), [{"AttributeName": "pk", "KeyType": "HASH"},
                                     {"AttributeName": "sk", "KeyType": "RANGE"}], "KeySchema")
    c.equal(c.obs["BillingMode"], "PAY_PER_REQUEST", "BillingModeSummary.BillingMode")
    c.expect((table.get("TableArn") or "").startswith("arn:aws:dynamodb:"), f"TableArn {table.get('TableArn')!r}")
    code, _s, _e, _r = error_code(c.run.ddb.create_table, TableName=name,
                                  AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                                  KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    c.obs["create_again_code"] = code
    c.equal(code, "ResourceInUseException", "CreateTable of an existing table")


@check("ddb UpdateTimeToLive + DescribeTimeToLive")
def _(c):
    name = c.table("ttlcfg")
    before = c.run.ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    updated = c.run.ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires"})["TimeToLiveSpecification"]
    after = c.run.ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    c.obs = {"before": before.get("TimeToLiveStatus"), "update_response": updated,
             "after_attribute": after.get("AttributeName"),
             "after_enabled_or_enabling": after.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")}
    c.equal(before.get("TimeToLiveStatus"), "DISABLED", "TimeToLiveStatus before")
    c.equal(updated, {"Enabled": True, "AttributeName": "expires"}, "UpdateTimeToLive response")
    c.expect(c.obs["after_enabled_or_enabling"], f"TimeToLiveStatus after: {after}")
    c.equal(after.get("AttributeName"), "expires", "AttributeName")


@check("ddb PutItem attribute_not_exists: second put -> ConditionalCheckFailedException")
def _(c):
    name = c.table("putcond")
    item = {"pk": {"S": "p"}, "sk": {"S": "s"}, "v": {"N": "1"}}
    c.run.ddb.put_item(TableName=name, Item=item, ConditionExpression="attribute_not_exists(pk)")
    code, status, _e, response = error_code(
        c.run.ddb.put_item, TableName=name, Item={**item, "v": {"N": "2"}},
        ConditionExpression="attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD")
    stored = c.item(name, "p", "s")
    c.obs = {"code": code, "status": status, "item_on_failure": norm_av(response.get("Item")), "stored": norm_av(stored)}
    c.equal(code, "ConditionalCheckFailedException", "second conditional put")
    c.equal(stored, item, "stored item after the failed put")
    c.equal(response.get("Item"), item, "Item returned with ReturnValuesOnConditionCheckFailure=ALL_OLD")


GET_ITEM = {"pk": {"S": "a"}, "sk": {"S": "1"}, "str": {"S": "text"}, "num": {"N": "-12.5"},
            "bool": {"BOOL": False}, "null": {"NULL": True}, "bin": {"B": b"\x00\xff"},
            "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2"]}, "list": {"L": [{"S": "e"}, {"N": "3"}]},
            "map": {"M": {"status": {"S": "deep"}, "n": {"N": "0"}}}}


@check("ddb GetItem: every attribute type round-trips; a missing item has no Item key")
def _(c):
    name = c.table("get")
    c.run.ddb.put_item(TableName=name, Item=GET_ITEM)
    got = c.item(name, "a", "1")
    missing = c.run.ddb.get_item(TableName=name, Key={"pk": {"S": "a"}, "sk": {"S": "nope"}})
    c.obs = {"item": jsonable(norm_av(got)), "missing_keys": sorted(k for k in missing if k != "ResponseMetadata")}
    c.equal(norm_av(got), norm_av(GET_ITEM), "item")
    c.expect("Item" not in missing, f"GetItem of a missing key returned Item: {missing.get('Item')}")


@check("ddb GetItem ProjectionExpression with #name.#name and #name[index] paths")
def _(c):
    name = c.table("project")
    c.run.ddb.put_item(TableName=name, Item=GET_ITEM)
    projected = c.item(name, "a", "1", ProjectionExpression="str, #m.#s, #l[1]",
                       ExpressionAttributeNames={"#m": "map", "#s": "status", "#l": "list"})
    c.obs = {"projected": jsonable(norm_av(projected))}
    c.equal(projected, {"str": {"S": "text"}, "map": {"M": {"status": {"S": "deep"}}}, "list": {"L": [{"N": "3"}]}},
            "projected item")


def update(c, table, expression, values=None, names=None, condition=None, return_values="ALL_NEW"):
    kwargs = {"TableName": table, "Key": {"pk": {"S": "u"}, "sk": {"S": "1"}}, "UpdateExpression": expression,
              "ReturnValues": return_values}
    if values:
        kwargs["ExpressionAttributeValues"] = values
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if condition:
        kwargs["ConditionExpression"] = condition
    return c.run.ddb.update_item(**kwargs).get("Attributes")


@check("ddb UpdateItem SET arithmetic (#c = #c + :one) and if_not_exists")
def _(c):
    name = c.table("arith")
    c.run.ddb.put_item(TableName=name, Item={"pk": {"S": "u"}, "sk": {"S": "1"}, "count": {"N": "5"}})
    a = update(c, name, "SET #c = #c + :one", {":one": {"N": "1"}}, {"#c": "count"}, return_values="UPDATED_NEW")
    b = update(c, name, "SET #c = #c - :two, fresh = if_not_exists(fresh, :zero)",
               {":two": {"N": "2"}, ":zero": {"N": "0"}}, {"#c": "count"}, return_values="UPDATED_NEW")
    d = update(c, name, "SET fresh = if_not_exists(fresh, :ten), derived = if_not_exists(absent, :ten) + :one",
               {":ten": {"N": "10"}, ":one": {"N": "1"}}, return_values="ALL_NEW")
    c.obs = {"plus_one": a, "minus_two_and_if_not_exists": b, "if_not_exists_again": d}
    c.equal(a, {"count": {"N": "6"}}, "SET #c = #c + :one (UPDATED_NEW)")
    c.equal(b, {"count": {"N": "4"}, "fresh": {"N": "0"}}, "SET #c = #c - :two, fresh = if_not_exists(...)")
    c.equal(d, {"pk": {"S": "u"}, "sk": {"S": "1"}, "count": {"N": "4"}, "fresh": {"N": "0"}, "derived": {"N": "11"}},
            "if_not_exists on an existing and a missing attribute")


@check("ddb UpdateItem list_append, REMOVE")
def _(c):
    name = c.table("list")
    c.run.ddb.put_item(TableName=name, Item={"pk": {"S": "u"}, "sk": {"S": "1"}, "l": {"L": [{"S": "b"}]},
                                              "gone": {"S": "x"}, "keep": {"S": "y"}, "alsogone": {"N": "1"}})
    a = update(c, name, "SET l = list_append(l, :end)", {":end": {"L": [{"S": "c"}, {"N": "4"}]}})
    b = update(c, name, "SET l = list_append(:front, l) REMOVE gone, alsogone", {":front": {"L": [{"S": "a"}]}})
    e = update(c, name, "REMOVE l[1], nothing_here")
    c.obs = {"append": a, "prepend_and_remove": b, "remove_list_element": e}
    c.equal(a["l"], {"L": [{"S": "b"}, {"S": "c"}, {"N": "4"}]}, "list_append at the end")
    c.equal(b, {"pk": {"S": "u"}, "sk": {"S": "1"}, "keep": {"S": "y"},
                "l": {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}, {"N": "4"}]}}, "list_append at the front + REMOVE")
    c.equal(e["l"], {"L": [{"S": "a"}, {"S": "c"}, {"N": "4"}]}, "REMOVE l[1]")


@check("ddb UpdateItem ADD number and string set, DELETE from set")
def _(c):
    name = c.table("sets")
    c.run.ddb.put_item(TableName=name, Item={"pk": {"S": "u"}, "sk": {"S": "1"}, "tags": {"SS": ["a", "b"]}})
    a = update(c, name, "ADD hits :five, tags :more", {":five": {"N": "5"}, ":more": {"SS": ["b", "c"]}})
    b = update(c, name, "ADD hits :minus DELETE tags :drop", {":minus": {"N": "-2"}, ":drop": {"SS": ["a", "zzz"]}})
    d = update(c, name, "DELETE tags :all ADD nums :ns", {":all": {"SS": ["b", "c"]}, ":ns": {"NS": ["1", "2"]}})
    c.obs = {"add": norm_av(a), "add_negative_and_delete": norm_av(b), "delete_all_elements": norm_av(d)}
    c.equal(norm_av(a), {"pk": {"S": "u"}, "sk": {"S": "1"}, "hits": {"N": "5"}, "tags": {"SS": ["a", "b", "c"]}},
            "ADD to a missing number and a string set")
    c.equal(norm_av(b), {"pk": {"S": "u"}, "sk": {"S": "1"}, "hits": {"N": "3"}, "tags": {"SS": ["b", "c"]}},
            "ADD a negative number, DELETE from the set")
    c.equal(norm_av(d), {"pk": {"S": "u"}, "sk": {"S": "1"}, "hits": {"N": "3"}, "nums": {"NS": ["1", "2"]}},
            "DELETE of every element removes the attribute")


@check("ddb ReturnValues on PutItem, UpdateItem and DeleteItem")
def _(c):
    name = c.table("retvals")
    key = {"pk": {"S": "u"}, "sk": {"S": "1"}}
    ddb = c.run.ddb
    out = {}
    out["put_new_ALL_OLD"] = ddb.put_item(TableName=name, Item={**key, "a": {"N": "1"}, "b": {"S": "x"}},
                                          ReturnValues="ALL_OLD").get("Attributes")
    out["put_replace_ALL_OLD"] = ddb.put_item(TableName=name, Item={**key, "a": {"N": "2"}, "b": {"S": "x"}},
                                              ReturnValues="ALL_OLD").get("Attributes")
    out["put_NONE"] = ddb.put_item(TableName=name, Item={**key, "a": {"N": "3"}, "b": {"S": "x"}},
                                   ReturnValues="NONE").get("Attributes")
    for mode in ("ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW", "NONE"):
        out["update_" + mode] = update(c, name, "SET a = a + :one, c = :c", {":one": {"N": "1"}, ":c": {"S": mode}},
                                       return_values=mode)
    out["delete_NONE_missing"] = ddb.delete_item(TableName=name, Key={"pk": {"S": "u"}, "sk": {"S": "2"}},
                                                 ReturnValues="NONE").get("Attributes")
    out["delete_ALL_OLD"] = ddb.delete_item(TableName=name, Key=key, ReturnValues="ALL_OLD").get("Attributes")
    code, _s, _e, _r = error_code(ddb.put_item, TableName=name, Item=key, ReturnValues="ALL_NEW")
    out["put_ALL_NEW_code"] = code
    c.obs = out
    c.equal(out["put_new_ALL_OLD"], None, "PutItem ALL_OLD of a new item")
    c.equal(out["put_replace_ALL_OLD"], {**key, "a": {"N": "1"}, "b": {"S": "x"}}, "PutItem ALL_OLD of a replaced item")
    c.equal(out["put_NONE"], None, "PutItem NONE")
    c.equal(out["update_ALL_OLD"], {**key, "a": {"N": "3"}, "b": {"S": "x"}}, "UpdateItem ALL_OLD")
    c.equal(out["update_ALL_NEW"], {**key, "a": {"N": "5"}, "b": {"S": "x"}, "c": {"S": "ALL_NEW"}}, "UpdateItem ALL_NEW")
    c.equal(out["update_UPDATED_OLD"], {"a": {"N": "5"}, "c": {"S": "ALL_NEW"}}, "UpdateItem UPDATED_OLD")
    c.equal(out["update_UPDATED_NEW"], {"a": {"N": "7"}, "c": {"S": "UPDATED_NEW"}}, "UpdateItem UPDATED_NEW")
    c.equal(out["update_NONE"], None, "UpdateItem NONE")
    c.equal(out["delete_NONE_missing"], None, "DeleteItem NONE")
    c.equal(out["delete_ALL_OLD"], {**key, "a": {"N": "8"}, "b": {"S": "x"}, "c": {"S": "NONE"}}, "DeleteItem ALL_OLD")
    c.equal(out["put_ALL_NEW_code"], "ValidationException", "PutItem with ReturnValues ALL_NEW")


CONDITION_VALUES = {":five": {"N": "5"}, ":ten": {"N": "10"}, ":he": {"S": "he"}, ":xy": {"S": "xy"},
                    ":open": {"S": "OPEN"}, ":closed": {"S": "CLOSED"}, ":ell": {"S": "ell"}}
CONDITIONS = [  # (condition, expected to hold on {n: 10, s: "hello", status: "OPEN"})
    ("n > :five", True), ("n < :five", False), ("n >= :ten AND n <= :ten", True), ("n <> :ten", False),
    ("n = :ten", True), ("begins_with(s, :he)", True), ("begins_with(s, :xy)", False),
    ("NOT begins_with(s, :xy)", True), ("attribute_exists(n) AND attribute_not_exists(absent)", True),
    ("attribute_exists(absent) OR n = :ten", True), ("(n = :five OR n = :ten) AND #st = :open", True),
    ("n = :five OR (n = :ten AND #st = :closed)", False), ("NOT (n = :ten)", False),
    ("n BETWEEN :five AND :ten", True), ("n IN (:five, :ten)", True), ("contains(s, :ell)", True),
    ("size(s) = :five", True), ("attribute_exists(#st) AND NOT (s = :xy OR n < :five)", True),
    ("s > :he", True), ("attribute_not_exists(n)", False),
]


@check("ddb condition expressions: comparisons, begins_with, AND/OR/NOT, parentheses, attribute_exists")
def _(c):
    name = c.table("cond")
    c.run.ddb.put_item(TableName=name, Item={"pk": {"S": "u"}, "sk": {"S": "1"}, "n": {"N": "10"},
                                              "s": {"S": "hello"}, "status": {"S": "OPEN"}})
    results, wrong = {}, []
    for condition, expected in CONDITIONS:
        values = {k: v for k, v in CONDITION_VALUES.items() if re.search(re.escape(k) + r"\b", condition)}
        values[":t"] = {"S": condition}
        names = {"#st": "status"} if "#st" in condition else None
        try:
            update(c, name, "SET touched = :t", values, names, condition=condition, return_values="NONE")
            results[condition] = True
        except ClientError as e:
            code = e.response["Error"]["Code"]
            results[condition] = False if code == "ConditionalCheckFailedException" else code
        if results[condition] != expected:
            wrong.append(f"{condition!r}: expected {expected}, got {results[condition]}")
    c.obs = results
    c.expect(not wrong, "; ".join(wrong))


@check("ddb failing conditional update and conditional delete leave the item")
def _(c):
    name = c.table("condfail")
    item = {"pk": {"S": "u"}, "sk": {"S": "1"}, "state": {"S": "DONE"}, "v": {"N": "1"}}
    c.run.ddb.put_item(TableName=name, Item=item)
    code_u, _s, _e, _r = error_code(update, c, name, "SET v = :two", {":two": {"N": "2"}, ":q": {"S": "QUEUED"}},
                                    {"#s": "state"}, condition="#s = :q")
    code_d, _s, _e, _r = error_code(c.run.ddb.delete_item, TableName=name, Key={"pk": {"S": "u"}, "sk": {"S": "1"}},
                                    ConditionExpression="attribute_not_exists(v)")
    after = c.item(name, "u", "1")
    deleted = c.run.ddb.delete_item(TableName=name, Key={"pk": {"S": "u"}, "sk": {"S": "1"}},
                                    ConditionExpression="#s = :d", ExpressionAttributeNames={"#s": "state"},
                                    ExpressionAttributeValues={":d": {"S": "DONE"}}, ReturnValues="ALL_OLD")
    gone = c.item(name, "u", "1")
    code_m, _s, _e, _r = error_code(c.run.ddb.delete_item, TableName=name, Key={"pk": {"S": "u"}, "sk": {"S": "1"}},
                                    ConditionExpression="attribute_exists(pk)")
    c.obs = {"update_code": code_u, "delete_code": code_d, "item_after_failures": after,
             "conditional_delete_returned": deleted.get("Attributes"), "after_delete": gone,
             "delete_missing_with_attribute_exists_code": code_m}
    c.equal(code_u, "ConditionalCheckFailedException", "failing conditional update")
    c.equal(code_d, "ConditionalCheckFailedException", "failing conditional delete")
    c.equal(after, item, "item after the failed update and delete")
    c.equal(deleted.get("Attributes"), item, "successful conditional delete (ALL_OLD)")
    c.equal(gone, None, "item after the successful delete")
    c.equal(code_m, "ConditionalCheckFailedException", "conditional delete of a missing item")


@check("ddb TransactWriteItems: put + update + delete + condition check all applied; a failed condition applies none")
def _(c):
    name = c.table("transact")
    ddb = c.run.ddb
    key = lambda pk: {"pk": {"S": pk}, "sk": {"S": "1"}}
    ddb.put_item(TableName=name, Item={**key("counter"), "n": {"N": "1"}})
    ddb.put_item(TableName=name, Item={**key("gone"), "x": {"S": "1"}})
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": name, "Item": {**key("job"), "state": {"S": "QUEUED"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": name, "Key": key("counter"), "UpdateExpression": "ADD #n :one", "ConditionExpression": "#n < :max",
                    "ExpressionAttributeNames": {"#n": "n"}, "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": "5"}}}},
        {"Delete": {"TableName": name, "Key": key("gone")}},
        {"ConditionCheck": {"TableName": name, "Key": key("absent"), "ConditionExpression": "attribute_not_exists(pk)"}},
    ])
    applied = {"job": c.item(name, "job", "1"), "counter": c.item(name, "counter", "1"), "gone": c.item(name, "gone", "1")}
    code, status, error, response = error_code(ddb.transact_write_items, TransactItems=[
        {"Put": {"TableName": name, "Item": {**key("job"), "state": {"S": "AGAIN"}}, "ConditionExpression": "attribute_not_exists(pk)",
                 "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        {"Update": {"TableName": name, "Key": key("counter"), "UpdateExpression": "ADD #n :one",
                    "ExpressionAttributeNames": {"#n": "n"}, "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ])
    reasons = response.get("CancellationReasons") or []
    after = {"job": c.item(name, "job", "1"), "counter": c.item(name, "counter", "1")}
    c.obs = {"applied": applied, "code": code, "status": status, "reason_codes": [r.get("Code") for r in reasons],
             "reason_item": reasons[0].get("Item") if reasons else None, "after_cancel": after}
    c.equal(applied["job"], {**key("job"), "state": {"S": "QUEUED"}}, "the put")
    c.equal(applied["counter"], {**key("counter"), "n": {"N": "2"}}, "the update")
    c.equal(applied["gone"], None, "the delete")
    c.equal(code, "TransactionCanceledException", "a transaction whose put's condition fails")
    c.equal(status, 400, "its HTTP status")
    c.equal([r.get("Code") for r in reasons], ["ConditionalCheckFailed", "None"], "CancellationReasons codes")
    c.equal(reasons[0].get("Item") if reasons else None, {**key("job"), "state": {"S": "QUEUED"}}, "ALL_OLD item in the reason")
    c.expect("[ConditionalCheckFailed, None]" in (error.get("Message") or ""), f"message {error.get('Message')!r}")
    c.equal(after, {"job": applied["job"], "counter": applied["counter"]}, "items after the cancelled transaction")


@check("ddb TransactWriteItems: two actions on one item -> ValidationException, nothing applied")
def _(c):
    name = c.table("transactno")
    key = {"pk": {"S": "n"}, "sk": {"S": "1"}}
    code, status, error, _r = error_code(c.run.ddb.transact_write_items, TransactItems=[
        {"Put": {"TableName": name, "Item": key}}, {"Delete": {"TableName": name, "Key": key}}])
    after = c.item(name, "n", "1")
    c.obs = {"code": code, "status": status, "message": error.get("Message"), "after": after}
    c.equal(code, "ValidationException", "two actions on one item")
    c.equal(error.get("Message"), "Transaction request cannot include multiple operations on one item", "its message")
    c.equal(after, None, "item after the refused transaction")


@check("ddb TransactWriteItems: the same ClientRequestToken twice applies the transaction once")
def _(c):
    name = c.table("transacttoken")
    key = {"pk": {"S": "n"}, "sk": {"S": "1"}}
    add = [{"Update": {"TableName": name, "Key": key, "UpdateExpression": "ADD #n :one",
                       "ExpressionAttributeNames": {"#n": "n"}, "ExpressionAttributeValues": {":one": {"N": "1"}}}}]
    token = c.run.unique("token")
    c.run.ddb.transact_write_items(TransactItems=add, ClientRequestToken=token)
    c.run.ddb.transact_write_items(TransactItems=add, ClientRequestToken=token)
    counted = c.item(name, "n", "1")
    c.obs = {"after_same_token": counted}
    c.equal(counted, {**key, "n": {"N": "1"}}, "item after the same token twice")


@check("ddb Query: begins_with, BETWEEN, <, ScanIndexForward False, Limit + LastEvaluatedKey pages")
def _(c):
    name = c.table("query")
    ddb = c.run.ddb
    keys = [f"a#{i:02d}" for i in range(1, 6)] + ["b#01", "b#02", "c#01"]
    for sk in keys:
        ddb.put_item(TableName=name, Item={"pk": {"S": "q"}, "sk": {"S": sk}, "v": {"N": str(len(sk))}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "other"}, "sk": {"S": "a#01"}})

    def sks(**kwargs):
        response = ddb.query(TableName=name, **kwargs)
        return [i["sk"]["S"] for i in response.get("Items", [])], response

    base = {"KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": {"S": "q"}, ":p": {"S": "a#"}}}
    prefix, response = sks(**base)
    between, _ = sks(KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                     ExpressionAttributeValues={":pk": {"S": "q"}, ":lo": {"S": "a#02"}, ":hi": {"S": "a#04"}})
    less, _ = sks(KeyConditionExpression="pk = :pk AND sk < :x",
                  ExpressionAttributeValues={":pk": {"S": "q"}, ":x": {"S": "a#03"}})
    backwards, _ = sks(ScanIndexForward=False, KeyConditionExpression="#p = :pk",
                       ExpressionAttributeNames={"#p": "pk"}, ExpressionAttributeValues={":pk": {"S": "q"}})
    pages, start = [], None
    for _ in range(10):
        kwargs = dict(base, Limit=2)
        if start:
            kwargs["ExclusiveStartKey"] = start
        page, page_response = sks(**kwargs)
        pages.append({"items": page, "Count": page_response.get("Count"),
                      "LastEvaluatedKey": page_response.get("LastEvaluatedKey")})
        start = page_response.get("LastEvaluatedKey")
        if not start:
            break
    filtered = ddb.query(TableName=name, KeyConditionExpression="pk = :pk", FilterExpression="v > :four",
                         ExpressionAttributeValues={":pk": {"S": "q"}, ":four": {"N": "4"}})
    c.obs = {"begins_with": prefix, "count": response.get("Count"), "scanned": response.get("ScannedCount"),
             "between": between, "less_than": less, "backwards": backwards, "pages": pages,
             "filter": {"Count": filtered.get("Count"), "ScannedCount": filtered.get("ScannedCount")}}
    c.equal(prefix, keys[:5], "begins_with(sk, 'a#')")
    c.equal(between, ["a#02", "a#03", "a#04"], "BETWEEN")
    c.equal(less, ["a#01", "a#02"], "sk < 'a#03'")
    c.equal(backwards, list(reversed(keys)), "ScanIndexForward False")
    c.equal([p["items"] for p in pages], [keys[0:2], keys[2:4], keys[4:5]], "pages of Limit 2")
    c.equal([p["LastEvaluatedKey"] for p in pages],
            [{"pk": {"S": "q"}, "sk": {"S": keys[1]}}, {"pk": {"S": "q"}, "sk": {"S": keys[3]}}, None],
            "LastEvaluatedKey of each page")
    c.equal((filtered.get("Count"), filtered.get("ScannedCount")), (0, 8), "FilterExpression Count / ScannedCount")


def validation(c, stem, **kwargs):
    name = c.table(stem)
    c.run.ddb.put_item(TableName=name, Item={"pk": {"S": "u"}, "sk": {"S": "1"}, "status": {"S": "x"}})
    code, status, error, _r = error_code(c.run.ddb.update_item, TableName=name,
                                         Key={"pk": {"S": "u"}, "sk": {"S": "1"}}, **kwargs)
    c.obs = {"code": code, "status": status}
    c.equal(code, "ValidationException", "error code")
    c.equal(status, 400, "HTTP status")
    c.equal(c.item(name, "u", "1"), {"pk": {"S": "u"}, "sk": {"S": "1"}, "status": {"S": "x"}}, "item unchanged")


@check("ddb invalid expression: syntax error -> ValidationException")
def _(c):
    validation(c, "syntax", UpdateExpression="SET a = = :v", ExpressionAttributeValues={":v": {"S": "1"}})


@check("ddb invalid expression: undefined :value -> ValidationException")
def _(c):
    validation(c, "undefined", UpdateExpression="SET a = :missing", ExpressionAttributeValues={":v": {"S": "1"}})


@check("ddb invalid expression: unused :value -> ValidationException")
def _(c):
    validation(c, "unused", UpdateExpression="SET a = :v",
               ExpressionAttributeValues={":v": {"S": "1"}, ":spare": {"S": "2"}})


@check("ddb invalid expression: reserved word `status` unescaped -> ValidationException")
def _(c):
    validation(c, "reserved", UpdateExpression="SET status = :v", ExpressionAttributeValues={":v": {"S": "1"}})


@check("ddb item operations on a missing table -> ResourceNotFoundException")
def _(c):
    missing = c.run.unique("missing")
    key = {"pk": {"S": "u"}, "sk": {"S": "1"}}
    codes = {
        "GetItem": error_code(c.run.ddb.get_item, TableName=missing, Key=key)[0],
        "PutItem": error_code(c.run.ddb.put_item, TableName=missing, Item=key)[0],
        "Query": error_code(c.run.ddb.query, TableName=missing, KeyConditionExpression="pk = :p",
                            ExpressionAttributeValues={":p": {"S": "u"}})[0],
        "DescribeTable": error_code(c.run.ddb.describe_table, TableName=missing)[0],
    }
    c.obs = codes
    for operation, code in codes.items():
        c.equal(code, "ResourceNotFoundException", operation)


@check("ddb TTL expiry: an item whose ttl is in the past disappears (polled up to 10 s)")
def _(c):
    name = c.table("ttl", ttl_attribute="expires")
    now = int(time.time())
    c.run.ddb.put_item(TableName=name, Item={"pk": {"S": "u"}, "sk": {"S": "old"}, "expires": {"N": str(now - 60)}})
    c.run.ddb.put_item(TableName=name, Item={"pk": {"S": "u"}, "sk": {"S": "new"}, "expires": {"N": str(now + 3600)}})
    c.run.ddb.put_item(TableName=name, Item={"pk": {"S": "u"}, "sk": {"S": "none"}})
    deadline, expired = time.monotonic() + 10, False
    while time.monotonic() < deadline:
        if c.item(name, "u", "old") is None:
            expired = True
            break
        time.sleep(0.5)
    remaining = sorted(i["sk"]["S"] for i in c.run.ddb.query(
        TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "u"}})["Items"])
    c.obs = {"expired_within_10s": expired, "remaining": remaining}
    c.expect(expired, "the item with a past ttl was still there after 10 s")
    c.equal(remaining, ["new", "none"], "items left (future ttl, no ttl)")


@check("ddb AWS CLI put-item / get-item round trip")
def _(c):
    name = c.table("cli")
    item = {"pk": {"S": "cli"}, "sk": {"S": "1"}, "text": {"S": "from the CLI ✓"}, "n": {"N": "7"},
            "tags": {"SS": ["a", "b"]}, "m": {"M": {"k": {"BOOL": True}}}}
    c.run.aws("dynamodb", "put-item", "--table-name", name, "--item", json.dumps(item))
    got = c.run.aws("dynamodb", "get-item", "--table-name", name, "--consistent-read",
                    "--key", json.dumps({"pk": {"S": "cli"}, "sk": {"S": "1"}}))
    c.obs = {"item": norm_av(got.get("Item"))}
    c.equal(norm_av(got.get("Item")), norm_av(item), "item read back by the CLI")
    via_boto = c.item(name, "cli", "1")
    c.equal(norm_av(via_boto), norm_av(item), "item read back by boto3")


# === Authentication (ours only: moto does not verify signatures) ====================================

def unknown_key(c):
    return "AKIAUNKNOWN" + c.run.suffix.upper()


@check("auth sqs wrong secret -> SignatureDoesNotMatch", ours_only=True, serial=True)
def _(c):
    client = c.run.client("sqs", access_key=c.run.access_key, secret_key=c.run.secret_key + "-wrong")
    code, status, _e, _r = error_code(client.list_queues)
    c.obs = {"code": code, "status": status}
    c.equal(code, "SignatureDoesNotMatch", "ListQueues signed with a wrong secret")
    c.equal(status, 403, "HTTP status")


@check("auth sqs unknown access key -> InvalidClientTokenId", ours_only=True, serial=True)
def _(c):
    client = c.run.client("sqs", access_key=unknown_key(c), secret_key="whatever")
    code, status, _e, _r = error_code(client.list_queues)
    c.obs = {"code": code, "status": status}
    c.equal(code, "InvalidClientTokenId", "ListQueues with an unknown access key")
    c.equal(status, 403, "HTTP status")


@check("auth ddb wrong secret -> InvalidSignatureException", ours_only=True, serial=True)
def _(c):
    client = c.run.client("dynamodb", access_key=c.run.access_key, secret_key=c.run.secret_key + "-wrong")
    code, status, _e, _r = error_code(client.list_tables)
    c.obs = {"code": code, "status": status}
    c.equal(code, "InvalidSignatureException", "ListTables signed with a wrong secret")
    c.equal(status, 400, "HTTP status")


@check("auth ddb unknown access key -> UnrecognizedClientException", ours_only=True, serial=True)
def _(c):
    client = c.run.client("dynamodb", access_key=unknown_key(c), secret_key="whatever")
    code, status, _e, _r = error_code(client.list_tables)
    c.obs = {"code": code, "status": status}
    c.equal(code, "UnrecognizedClientException", "ListTables with an unknown access key")
    c.equal(status, 400, "HTTP status")


@check("auth ddb request dated 20 minutes ago -> InvalidSignatureException (Signature expired)",
       ours_only=True, serial=True)
def _(c):
    past = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        code, status, error, _r = error_code(c.run.client("dynamodb").list_tables)
    c.obs = {"code": code, "status": status, "message_starts_signature_expired":
             str(error.get("Message", "")).startswith("Signature expired")}
    c.equal(code, "InvalidSignatureException", "ListTables dated 20 minutes ago")
    c.expect(c.obs["message_starts_signature_expired"], f"message {error.get('Message')!r}")
    c.run.client("dynamodb").list_tables()   # and the clock, restored, signs valid requests again


# --- Runner ------------------------------------------------------------------------------------------------

def run_check(run, spec):
    ctx = Ctx(run)
    try:
        spec["fn"](ctx)
        status, why = "ok", None
    except CheckFailed as e:
        status, why = "not ok", str(e)
    except ClientError as e:
        status, why = "not ok", f"unexpected {e.response['Error'].get('Code')}: {e}"
        ctx.obs["unexpected_error"] = e.response["Error"].get("Code")
    except Exception as e:  # noqa: BLE001 - report, never crash the suite
        status, why = "not ok", f"{type(e).__name__}: {e}"
        ctx.obs["unexpected_error"] = type(e).__name__
        if os.environ.get("ENDPOINT_SUITE_TRACE"):
            traceback.print_exc()
    finally:
        for cleanup in reversed(ctx.cleanups):
            try:
                cleanup()
            except Exception:  # noqa: BLE001
                pass
    observed = jsonable(ctx.obs)
    if status != "ok":
        observed = dict(observed) if isinstance(observed, dict) else {"observed": observed}
        observed["failed"] = True
    return status, why, run.normalize(observed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--name", default="ours", choices=["ours", "moto"])
    parser.add_argument("--json", dest="json_out")
    parser.add_argument("--only", help="regular expression: run the checks whose name matches")
    parser.add_argument("--jobs", type=int, default=4, help="checks run at once (default 4)")
    parser.add_argument("--aws", default=os.path.join(ROOT, ".venv-peers", "bin", "aws"), help="AWS CLI v1")
    args = parser.parse_args()

    selected = [spec for spec in CHECKS if not args.only or re.search(args.only, spec["name"])]
    if not selected:
        print(f"no check matches {args.only!r}", file=sys.stderr)
        return 2
    run = Run(args.endpoint, args.name, args.aws)
    try:
        return run_all(args, run, selected)
    finally:
        shutil.rmtree(run.cli_dir, ignore_errors=True)


def run_all(args, run, selected):
    started = time.monotonic()
    passed = failed = expected_failures = skipped = 0
    observed = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {s["name"]: pool.submit(run_check, run, s) for s in selected
                   if not s["serial"] and not (s["ours_only"] and args.name != "ours")}
        for spec in selected:   # results in the order of the checks, as they become available
            name = spec["name"]
            if spec["ours_only"] and args.name != "ours":
                print(f"ok - {name} # SKIP ours only", flush=True)
                skipped += 1
                continue
            if spec["serial"]:   # alone, after the others: they patch botocore's clock or use other keys
                concurrent.futures.wait(futures.values())
                status, why, obs = run_check(run, spec)
            else:
                status, why, obs = futures[name].result()
            observed[name] = obs
            if status == "ok":
                print(f"ok - {name}", flush=True)
                passed += 1
            elif args.name == "moto" and name in KNOWN_MOTO_DEVIATIONS:
                print(f"not ok - {name}: {why} # TODO known moto deviation", flush=True)
                expected_failures += 1
            else:
                print(f"not ok - {name}: {why}", flush=True)
                failed += 1
    elapsed = time.monotonic() - started
    print(f"# {args.name} at {args.endpoint}: {len(selected)} checks in {elapsed:.1f} s; "
          f"{expected_failures} known moto deviations, {skipped} skipped")
    print(f"{passed} passed, {failed} failed")
    if args.json_out:
        observed["_meta"] = {"name": args.name, "passed": passed, "failed": failed,
                             "known_deviations": expected_failures, "skipped": skipped,
                             "seconds": round(elapsed, 1)}
        with open(args.json_out, "w") as f:
            json.dump(observed, f, indent=1, sort_keys=True, ensure_ascii=False)
            f.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
