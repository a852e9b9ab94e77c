#!/usr/bin/env python3
"""Conformance suite for an S3 endpoint (REST XML), run with boto3, the AWS CLI and raw HTTP.

The same suite runs against our emulator and against moto in server mode; `s3_diff.py` then
compares what the two returned (a differential check): `python scripts/lib/s3_diff.py ours.json
moto.json`. s3_diff.py is endpoint_diff.py's comparison unchanged (it reads any two suite JSON
files) plus the S3 entries of KNOWN_MOTO_DEVIATIONS, which this suite imports from it.

Usage:
    python scripts/lib/s3_suite.py --endpoint http://127.0.0.1:PORT
        [--name ours|moto] [--json OUT] [--only PATTERN] [--jobs N] [--aws PATH]

Prints `ok - NAME`, `not ok - NAME: WHY` (TAP-like) per check and ends with `N passed, M failed`;
exits non-zero when a check failed. With `--name moto`:
  * checks marked "ours only" are skipped (`ok - NAME # SKIP ours only`): moto verifies no
    signature (header, presigned URL, POST policy or chunk signature) and answers every
    subresource, so those checks only describe our emulator;
  * checks listed in s3_diff.KNOWN_MOTO_DEVIATIONS that fail are reported as
    `not ok - NAME: WHY # TODO known moto deviation` and do not count as failures.
--json OUT writes {check name: observed result}: what both implementations should agree on
(status codes, error codes, bodies, ETags, listings), never request ids or dates. Bucket names
(`s3s-STEM-SUFFIX-N`), the run's suffix, account ids and the endpoint are replaced by
placeholders. A failed check records "failed": true next to whatever it had observed.
--only PATTERN runs the checks whose name matches the regular expression (re.search).

Requests: boto3 with path-style addressing (Config(s3={"addressing_style": "path"})), botocore's
default checksum behaviour (over HTTP: `x-amz-checksum-crc32` on uploads), credentials
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default test/test), region us-east-1, one attempt.
Requests boto3 cannot make are built by hand and sent with http.client: signed with botocore's
S3SigV4Auth (with a preset x-amz-content-sha256 for aws-chunked bodies), chunk signatures and
POST forms computed here, presigned URLs sent with no SigV4 library. Virtual-hosted-style checks
sign for Host `BUCKET.localhost:PORT` and connect to the endpoint's address.

Every check makes its own buckets (random suffix per run), so checks are independent and run
concurrently (--jobs, default 4); the check that patches botocore's clock runs alone, last.

Expected behaviour and its sources
----------------------------------
aws.md = /work/shared/reference/aws.md (project reference, sections 5.1-5.5). ERR = Amazon S3 API
Reference "Error responses" / "List of error codes" (docs.aws.amazon.com/AmazonS3/latest/API/
ErrorResponses.html). "[3P]" marks third-party captures of real S3 responses; "[UNVERIFIED]"
marks behaviour found in no AWS document or capture here.

Buckets
  InvalidBucketName 400, BucketNotEmpty 409, NoSuchBucket 404        ERR
  re-create by the same owner: BucketAlreadyOwnedByYou 409 "in all AWS Regions except in the North
  Virginia Region. For legacy compatibility, if you re-create an existing bucket that you already
  own in the North Virginia Region, Amazon S3 returns 200 OK" (botocore s3 model, error shape
  BucketAlreadyOwnedByYou; SDK docs for every language). Encoded as: same name in us-east-1
  -> 200; a bucket created with LocationConstraint eu-west-1, created again the same way -> 409.
Objects
  ETag of a single-part upload = quoted hex MD5                       aws.md 5.5 (BC ETag doc)
  Content-MD5 not matching -> BadDigest 400; not a base64 MD5 -> InvalidDigest 400   ERR; ceph
      s3-tests PR #18 ("S3 uses BadDigest for the former and InvalidDigest for the latter") [3P]
  x-amz-checksum-crc32 not matching -> BadDigest 400, "The CRC32 you specified did not match the
      calculated checksum." (aws-sdk-ruby #3322 title, an error from S3) [3P]; the same code for a
      wrong trailer checksum in an aws-chunked body [UNVERIFIED: assumed the same check]
  user metadata: keys stored lowercase; non-US-ASCII values "are character decoded as per RFC 2047
      before storing and encoded as per RFC 2047 ... before returning" (S3 User Guide, Using
      metadata). The check sends an RFC 2047 value and expects one that decodes to the same text.
  Range: single range -> 206 + Content-Range; unsatisfiable -> 416 InvalidRange (ERR); "Amazon S3
      doesn't support retrieving multiple ranges of data per GET request" (GetObject API, Range):
      S3 then answers 200 with the whole object (captures: riak_cs PR #304, awslabs/aws-c-s3 #257)
      [3P]
  conditional requests: If-Match mismatch -> 412 PreconditionFailed, If-None-Match match -> 304,
      If-Modified-Since not modified -> 304, If-Unmodified-Since modified since -> 412 (GetObject /
      HeadObject API "conditional requests", RFC 7232 precedence)
  NoSuchKey 404 (HEAD: 404, no body - aws.md 5.3), DeleteObject of a missing key 204 (DeleteObject
      API: no error for a missing key), KeyTooLongError 400 "Your key is too long" (ERR; key limit
      1024 bytes of UTF-8: S3 User Guide, object keys)
Listing
  ListObjectsV2 Prefix/Delimiter/CommonPrefixes/MaxKeys/ContinuationToken/StartAfter/KeyCount/
  EncodingType=url (ListObjectsV2 API); ListObjects Marker/NextMarker (NextMarker only with a
  delimiter; ListObjects API)
Multipart
  ETag `"<md5 of the concatenated binary part MD5s>-<N>"` (aws.md 5.5); NoSuchUpload 404,
  InvalidPart 400, InvalidPartOrder 400, EntityTooSmall 400 (ERR; part minimum 5 MiB except the
  last: S3 User Guide multipart limits)
aws-chunked
  S3 API "Transferring Payload in Multiple Chunks" (sigv4-streaming): chunk string to sign
  "AWS4-HMAC-SHA256-PAYLOAD\\n<date>\\n<scope>\\n<previous signature>\\n<sha256('')>\\n<sha256(data)>",
  seed = the Authorization signature; a bad chunk signature -> SignatureDoesNotMatch 403 (ERR);
  trailer form (STREAMING-UNSIGNED-PAYLOAD-TRAILER): aws.md 5.5 (CAP)
Presigned URLs (aws.md 5.2, 5.3)
  expired -> 403 AccessDenied "Request has expired"; X-Amz-Expires > 604800 -> 400
  AuthorizationQueryParametersError [3P, aws.md]; tampered -> 403 SignatureDoesNotMatch; unknown key
  -> 403 InvalidAccessKeyId (ERR); signed content-type must be sent as signed (aws.md 5.2)
Presigned POST (aws.md 5.4; S3 API "Browser-based uploads using POST", "Creating a POST policy")
  success_action_status 200|201|204 (default 204; 201 -> PostResponse XML); expired -> 403
  AccessDenied "Invalid according to Policy: Policy expired." (aws-sdk-ruby #895) [3P]; a condition
  failing -> 403 AccessDenied "Invalid according to Policy: Policy Condition failed: ..." [3P,
  aws.md]; a field no condition covers -> 403 AccessDenied "Invalid according to Policy: Extra input
  fields: ..." (aws-sdk-php #3292, s3_direct_upload #54) [3P]; size outside content-length-range ->
  400 EntityTooLarge / EntityTooSmall (aws.md 5.4) [3P]; bad signature -> 403 SignatureDoesNotMatch
CORS
  S3 API "Appendix: OPTIONS object": preflight answered from the bucket's rules, 403 when CORS is
  not enabled or no rule matches; Access-Control-Allow-Origin/-Methods/-Headers/-Max-Age/-Expose-
  Headers; the 403 body is "CORSResponse: This CORS request is not allowed..." [UNVERIFIED exact
  text]; `Vary: Origin` on CORS responses [UNVERIFIED for S3: HTTP caching practice]
  NoSuchCORSConfiguration 404 (ERR)
Authentication (ours only)
  no credentials on a bucket that is not public -> 403 AccessDenied; InvalidAccessKeyId 403;
  SignatureDoesNotMatch 403; XAmzContentSHA256Mismatch 400 (ERR: "The provided
  'x-amz-content-sha256' header does not match what was computed."); clock skew > 15 min ->
  RequestTimeTooSkewed 403 (ERR; aws.md 5.1 [UNVERIFIED there])
HTTP
  keep-alive: HTTP/1.1 connections persist unless a side sends Connection: close (RFC 9112 9.3); a
  request with neither Content-Length nor Transfer-Encoding has an empty body (RFC 9112 6.3), which
  is how urllib3 (boto3) sends GET/HEAD/DELETE
Errors
  REST errors: Content-Type application/xml, <Error><Code/><Message/><RequestId/>... with
  Resource / Key / BucketName where S3 gives them (ERR "REST error responses"; aws.md 5.3);
  NotImplemented 501 "A header you provided implies functionality that is not implemented" (ERR) -
  the code our emulator uses for subresources it leaves out (ours only: AWS implements them).
"""
import argparse
import base64
import binascii
import concurrent.futures
import datetime
import email.header
import fnmatch
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from unittest import mock

# With awscrt importable (the AWS CLI brings it), botocore signs with CRT signers, which ignore a
# patched botocore.auth.get_current_datetime. The clock-skew check needs the Python signer.
os.environ["BOTO_DISABLE_CRT"] = "true"

import boto3  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ next to the scripts
from s3_diff import KNOWN_MOTO_DEVIATIONS  # noqa: E402

REGION = "us-east-1"
KIB = 1024
MIB = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALPHABET = b"abcdefghijklmnopqrstuvwxyz"   # a 26-byte object for the Range checks


# --- Small helpers ---------------------------------------------------------------------------------

class CheckFailed(Exception):
    pass


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode((binascii.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def multipart_etag(parts) -> str:
    return '"' + md5_hex(b"".join(hashlib.md5(p).digest() for p in parts)) + f'-{len(parts)}"'


def blob(size: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes, so ETags are the same in every run and implementation."""
    return random.Random(seed).randbytes(size)


# Vectors: crc32 of "hello" as the SDK sends it (aws.md 5.5), MD5 of the empty body.
assert crc32_b64(b"hello") == "NhCmhg=="
assert md5_hex(b"") == "d41d8cd98f00b204e9800998ecf8427e"


def error_code(call, *args, **kwargs):
    """Runs a boto3 call expected to fail; returns (code, http status, error dict, response).
    A call that succeeds gives code None and its status, for the caller to compare and record."""
    try:
        response = call(*args, **kwargs)
    except ClientError as e:
        return (e.response["Error"].get("Code"), e.response["ResponseMetadata"].get("HTTPStatusCode"),
                e.response["Error"], e.response)
    return None, response.get("ResponseMetadata", {}).get("HTTPStatusCode"), {}, response


def xml_error(body: bytes):
    """{Code, Message, ...} of an S3 XML error body, or {} when the body is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return {}
    if root.tag.split("}")[-1] != "Error":
        return {}
    return {child.tag.split("}")[-1]: (child.text or "") for child in root}


def xml_find(body: bytes, name: str):
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.split("}")[-1] == name:
            return element.text or ""
    return None


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def error(self):
        return xml_error(self.body)

    @property
    def code(self):
        return self.error.get("Code")

    def __repr__(self):
        return f"<{self.status} {self.code or ''} {self.body[:200]!r}>"


class PresetPayloadAuth(S3SigV4Auth):
    """S3 SigV4 with a given x-amz-content-sha256 (STREAMING-..., UNSIGNED-PAYLOAD or a hash)."""

    def __init__(self, credentials, payload_hash, region=REGION):
        super().__init__(credentials, "s3", region)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


def signing_key(secret, date, region=REGION, service="s3"):
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


# --- Run context ----------------------------------------------------------------------------------------

class Run:
    def __init__(self, endpoint, name, aws_cli):
        self.endpoint = endpoint.rstrip("/")
        parts = urllib.parse.urlsplit(self.endpoint)
        self.netloc = parts.netloc
        self.address = parts.hostname
        self.port = parts.port or 80
        self.name = name
        self.aws_cli = aws_cli
        self.suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
        self.access_key = os.environ.get("AWS_ACCESS_KEY_ID") or "test"
        self.secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY") or "test"
        self.session_token = os.environ.get("AWS_SESSION_TOKEN") or None
        self.s3 = self.client()
        self.cli_dir = tempfile.mkdtemp(prefix="s3-suite-cli-")
        with open(os.path.join(self.cli_dir, "config"), "w") as f:
            f.write(f"[default]\nregion = {REGION}\noutput = json\n")
        with open(os.path.join(self.cli_dir, "credentials"), "w") as f:
            f.write(f"[default]\naws_access_key_id = {self.access_key}\naws_secret_access_key = {self.secret_key}\n")
            if self.session_token:
                f.write(f"aws_session_token = {self.session_token}\n")
        self._counter = 0
        self._lock = threading.Lock()

    def credentials(self):
        return Credentials(self.access_key, self.secret_key, self.session_token)

    def client(self, access_key=None, secret_key=None, token="default", region=REGION, endpoint=None, **config):
        session = boto3.session.Session(
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            aws_session_token=(None if access_key else self.session_token) if token == "default" else token,
            region_name=region)
        config.setdefault("s3", {"addressing_style": "path"})
        return session.client("s3", endpoint_url=endpoint or self.endpoint, config=Config(
            retries={"max_attempts": 1}, connect_timeout=10, read_timeout=60, max_pool_connections=32,
            signature_version="s3v4", **config))

    def virtual_client(self):
        """A virtual-hosted-style client: botocore keeps path style for an IP endpoint, so it gets
        http://localhost:PORT and makes BUCKET.localhost:PORT hosts (sent to the endpoint's address)."""
        return self.client(endpoint=f"http://localhost:{self.port}", s3={"addressing_style": "virtual"})

    def unique(self, stem):
        with self._lock:
            self._counter += 1
            return f"s3s-{stem}-{self.suffix}-{self._counter}"

    def normalize(self, value):
        """Placeholders for what legitimately differs between runs and implementations."""
        if isinstance(value, str):
            value = value.replace(self.endpoint, "{endpoint}").replace(self.netloc, "{netloc}")
            value = re.sub(r"s3s-([a-z0-9-]+?)-" + self.suffix + r"-\d+", r"{\1}", value)
            value = re.sub(r"\b\d{12}\b", "{account}", value)
            return value
        if isinstance(value, dict):
            return {self.normalize(k): self.normalize(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.normalize(v) for v in value]
        return value

    # --- HTTP ------------------------------------------------------------------------------------
    def send(self, method, target, headers=None, body=b"", host=None):
        """One HTTP request to the endpoint's address with exactly these headers (Host included).
        `target` is the request target (path + query), sent as is."""
        connection = http.client.HTTPConnection(self.address, self.port, timeout=60)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            sent = {k.lower() for k in (headers or {})}
            if "host" not in sent:
                connection.putheader("Host", host or self.netloc)
            if body is not None and "content-length" not in sent and "transfer-encoding" not in sent \
                    and (body or method in ("PUT", "POST")):
                connection.putheader("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            connection.endheaders(body if body else None)
            response = connection.getresponse()
            data = response.read()
            return Resp(response.status, response.getheaders(), data)
        finally:
            connection.close()

    def url(self, url, method="GET", headers=None, body=b""):
        """Sends a (presigned) URL with plain HTTP: no signing library involved."""
        parts = urllib.parse.urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        return self.send(method, target, headers=headers, body=body, host=parts.netloc)

    def raw(self, method, path, query="", headers=None, body=b"", sign=True, credentials=None,
            host=None, payload_hash=None, when=None):
        """A request signed with botocore's S3SigV4Auth (path and query already percent-encoded).
        payload_hash presets x-amz-content-sha256 (default: the SHA-256 of the body)."""
        host = host or self.netloc
        target = path + ("?" + query if query else "")
        headers = dict(headers or {})
        if sign:
            request = AWSRequest(method=method, url=f"http://{host}{target}", data=body, headers=headers)
            auth = PresetPayloadAuth(credentials or self.credentials(),
                                     payload_hash or hashlib.sha256(body or b"").hexdigest())
            if when is not None:
                with mock.patch("botocore.auth.get_current_datetime", return_value=when):
                    auth.add_auth(request)
            else:
                auth.add_auth(request)
            headers = {k: v for k, v in request.headers.items()}
        headers["Host"] = host
        return self.send(method, target, headers=headers, body=body, host=host)

    # --- AWS CLI v1 --------------------------------------------------------------------------------
    def aws(self, *args, timeout=120):
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
        cmd = [self.aws_cli, "--endpoint-url", self.endpoint, "--region", REGION, *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise CheckFailed(f"`aws {' '.join(args[:2])}` exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
        return proc.stdout


class Ctx:
    """Per-check state: the observed result and the buckets to delete afterwards."""

    def __init__(self, run):
        self.run = run
        self.s3 = run.s3
        self.obs = {}
        self.buckets = []

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

    def failure(self, resp, status, code, what, message=None):
        """Checks an HTTP response is the S3 error `code` with `status` (and a message containing
        `message`); returns {status, code} for the observation."""
        if resp.status != status or resp.code != code:
            raise CheckFailed(f"{what}: expected {status} {code}, got {resp.status} {resp.code}: {resp.body[:300]!r}")
        if message is not None and message not in resp.error.get("Message", ""):
            raise CheckFailed(f"{what}: message {resp.error.get('Message')!r} lacks {message!r}")
        return {"status": resp.status, "code": resp.code}

    def bucket(self, stem="b", region=None):
        name = self.run.unique(stem)
        kwargs = {"Bucket": name}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self.s3.create_bucket(**kwargs)
        self.buckets.append(name)
        return name

    def cleanup(self):
        for name in reversed(self.buckets):
            empty_bucket(self.s3, name)
            try:
                self.s3.delete_bucket(Bucket=name)
            except ClientError:
                pass

    def exists(self, bucket, key):
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as e:
            if e.response["ResponseMetadata"].get("HTTPStatusCode") == 404:
                return False
            raise

    def keys(self, bucket, prefix=""):
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def path(self, bucket, key=None):
        return f"/{bucket}" + ("" if key is None else "/" + urllib.parse.quote(key, safe="/~"))


def empty_bucket(s3, name):
    try:
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    except ClientError:
        pass
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    except ClientError:
        pass


# --- Check registry ------------------------------------------------------------------------------------

CHECKS = []


def check(name, ours_only=False, serial=False):
    def register(function):
        CHECKS.append({"name": name, "fn": function, "ours_only": ours_only, "serial": serial})
        return function
    return register


# === Buckets ==============================================================================================

@check("s3 CreateBucket, HeadBucket 200 / 404, ListBuckets")
def _(c):
    name = c.bucket("create")
    head = c.s3.head_bucket(Bucket=name)
    code, status, _e, _r = error_code(c.s3.head_bucket, Bucket=c.run.unique("missing"))
    listed = [b["Name"] for b in c.s3.list_buckets()["Buckets"]]
    c.obs = {"head_status": head["ResponseMetadata"]["HTTPStatusCode"], "missing_head": [status, code],
             "listed": name in listed}
    c.equal(head["ResponseMetadata"]["HTTPStatusCode"], 200, "HeadBucket status")
    c.equal(status, 404, "HeadBucket of a missing bucket")
    c.expect(name in listed, f"ListBuckets lacks {name}")


@check("s3 CreateBucket with LocationConstraint eu-west-1; GetBucketLocation")
def _(c):
    east = c.bucket("loc-east")
    west = c.bucket("loc-west", region="eu-west-1")
    east_location = c.s3.get_bucket_location(Bucket=east).get("LocationConstraint")
    west_location = c.s3.get_bucket_location(Bucket=west).get("LocationConstraint")
    c.obs = {"us-east-1": east_location, "eu-west-1": west_location}
    c.equal(east_location, None, "LocationConstraint of a us-east-1 bucket (S3 answers an empty element)")
    c.equal(west_location, "eu-west-1", "LocationConstraint of an eu-west-1 bucket")


@check("s3 CreateBucket again by the same owner: 200 in us-east-1, BucketAlreadyOwnedByYou 409 elsewhere")
def _(c):
    east = c.bucket("again-east")
    again = c.s3.create_bucket(Bucket=east)["ResponseMetadata"]["HTTPStatusCode"]
    west = c.bucket("again-west", region="eu-west-1")
    code, status, _e, _r = error_code(c.s3.create_bucket, Bucket=west,
                                      CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    c.obs = {"us_east_1_recreate_status": again, "eu_west_1_recreate": [status, code]}
    c.equal(again, 200, "re-creating a us-east-1 bucket you own (S3 legacy behaviour: 200 OK)")
    c.equal((status, code), (409, "BucketAlreadyOwnedByYou"), "re-creating an eu-west-1 bucket you own")


@check("s3 DeleteBucket: not empty -> BucketNotEmpty 409; empty -> 204; missing -> NoSuchBucket 404")
def _(c):
    name = c.bucket("delete")
    c.s3.put_object(Bucket=name, Key="k", Body=b"x")
    code, status, _e, _r = error_code(c.s3.delete_bucket, Bucket=name)
    c.obs["not_empty"] = [status, code]
    c.equal((status, code), (409, "BucketNotEmpty"), "DeleteBucket of a bucket with an object")
    c.s3.delete_object(Bucket=name, Key="k")
    deleted = c.s3.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"]
    c.obs["empty"] = deleted
    c.equal(deleted, 204, "DeleteBucket of an empty bucket")
    code, status, error, _r = error_code(c.s3.delete_bucket, Bucket=name)
    c.obs["missing"] = [status, code, error.get("BucketName")]
    c.equal((status, code), (404, "NoSuchBucket"), "DeleteBucket of a deleted bucket")
    code, status, _e, _r = error_code(c.s3.put_object, Bucket=name, Key="k", Body=b"x")
    c.obs["put_into_missing"] = [status, code]
    c.equal((status, code), (404, "NoSuchBucket"), "PutObject into a missing bucket")


@check("s3 invalid bucket names -> InvalidBucketName 400")
def _(c):
    results = {}
    for label, name in (("too short", "ab"), ("uppercase", "Upper-" + c.run.suffix),
                        ("underscore", "under_" + c.run.suffix), ("leading dash", "-dash" + c.run.suffix),
                        ("ip address", "192.168.5.4"), ("adjacent dots", "a..b" + c.run.suffix),
                        ("64 characters", "l" * 64)):
        resp = c.run.raw("PUT", "/" + name)
        results[label] = [resp.status, resp.code]
        if resp.status == 200:   # never leave one behind
            c.run.raw("DELETE", "/" + name)
    c.obs = results
    for label, got in results.items():
        c.equal(got, [400, "InvalidBucketName"], f"CreateBucket with a bucket name ({label})")


# === Objects ================================================================================================

@check("s3 PutObject / GetObject / HeadObject / DeleteObject; ETag is the quoted MD5")
def _(c):
    name = c.bucket("obj")
    body = b"hello, object \x00\xff" * 10
    put = c.s3.put_object(Bucket=name, Key="dir/obj.bin", Body=body)
    got = c.s3.get_object(Bucket=name, Key="dir/obj.bin")
    data = got["Body"].read()
    head = c.s3.head_object(Bucket=name, Key="dir/obj.bin")
    deleted = c.s3.delete_object(Bucket=name, Key="dir/obj.bin")["ResponseMetadata"]["HTTPStatusCode"]
    c.obs = {"put_etag": put["ETag"], "get_etag": got["ETag"], "head_etag": head["ETag"],
             "length": [got["ContentLength"], head["ContentLength"]], "body_md5": md5_hex(data),
             "delete_status": deleted, "exists_after_delete": c.exists(name, "dir/obj.bin"),
             "last_modified_is_datetime": isinstance(head.get("LastModified"), datetime.datetime)}
    etag = f'"{md5_hex(body)}"'
    c.equal(put["ETag"], etag, "PutObject ETag")
    c.equal(data, body, "GetObject body")
    c.equal((got["ETag"], head["ETag"]), (etag, etag), "GetObject / HeadObject ETag")
    c.equal((got["ContentLength"], head["ContentLength"]), (len(body), len(body)), "ContentLength")
    c.expect(c.obs["last_modified_is_datetime"], "HeadObject has no Last-Modified")
    c.equal(deleted, 204, "DeleteObject status")
    c.expect(not c.obs["exists_after_delete"], "the object is still there after DeleteObject")


@check("s3 Content-Type, Content-Disposition, Cache-Control and user metadata kept (GET and HEAD)")
def _(c):
    name = c.bucket("meta")
    note = "héllo wörld ✓"
    encoded_note = email.header.Header(note, "utf-8").encode()   # =?utf-8?b?...?=
    c.s3.put_object(Bucket=name, Key="m.txt", Body=b"meta", ContentType="text/plain; charset=utf-8",
                    ContentDisposition='attachment; filename="report 1.txt"', CacheControl="max-age=60",
                    ContentLanguage="de", Metadata={"Color": "blue", "multi-word-key": "a b  c", "note": encoded_note})
    got = c.s3.get_object(Bucket=name, Key="m.txt")
    head = c.s3.head_object(Bucket=name, Key="m.txt")

    def decoded(value):
        return str(email.header.make_header(email.header.decode_header(value))) if value is not None else None

    for label, response in (("get", got), ("head", head)):
        metadata = response.get("Metadata", {})
        c.obs[label] = {"ContentType": response.get("ContentType"), "ContentDisposition": response.get("ContentDisposition"),
                        "CacheControl": response.get("CacheControl"), "ContentLanguage": response.get("ContentLanguage"),
                        "Metadata": {k: v for k, v in metadata.items() if k != "note"},
                        "note_decoded": decoded(metadata.get("note"))}
        c.equal(response.get("ContentType"), "text/plain; charset=utf-8", f"{label} Content-Type")
        c.equal(response.get("ContentDisposition"), 'attachment; filename="report 1.txt"', f"{label} Content-Disposition")
        c.equal(response.get("CacheControl"), "max-age=60", f"{label} Cache-Control")
        c.equal(response.get("ContentLanguage"), "de", f"{label} Content-Language")
        c.equal(c.obs[label]["Metadata"], {"color": "blue", "multi-word-key": "a b  c"},
                f"{label} user metadata (keys lowercase)")
        c.equal(decoded(metadata.get("note")), note, f"{label} RFC 2047 metadata value, decoded")


@check("s3 Content-MD5: right accepted, wrong -> BadDigest 400, malformed -> InvalidDigest 400")
def _(c):
    name = c.bucket("md5")
    body = b"content-md5 body"
    ok = c.s3.put_object(Bucket=name, Key="ok", Body=body, ContentMD5=md5_b64(body))
    code, status, _e, _r = error_code(c.s3.put_object, Bucket=name, Key="wrong", Body=body, ContentMD5=md5_b64(b"other"))
    c.obs["wrong"] = [status, code]
    code2, status2, _e, _r = error_code(c.s3.put_object, Bucket=name, Key="malformed", Body=body, ContentMD5="not-an-md5!")
    c.obs["malformed"] = [status2, code2]
    c.obs["ok_etag"] = ok["ETag"]
    c.obs["stored"] = sorted(c.keys(name))
    c.equal(ok["ETag"], f'"{md5_hex(body)}"', "ETag with a right Content-MD5")
    c.equal((status, code), (400, "BadDigest"), "a wrong Content-MD5")
    c.equal((status2, code2), (400, "InvalidDigest"), "a malformed Content-MD5")
    c.equal(c.obs["stored"], ["ok"], "objects stored")


@check("s3 flexible checksums: x-amz-checksum-crc32/sha256 kept and returned with ChecksumMode, tampered -> BadDigest")
def _(c):
    name = c.bucket("crc")
    body = b"checksummed body " * 100
    put = c.s3.put_object(Bucket=name, Key="crc", Body=body)   # botocore adds x-amz-checksum-crc32 over HTTP
    got = c.s3.get_object(Bucket=name, Key="crc", ChecksumMode="ENABLED")
    data = got["Body"].read()
    sha = c.s3.put_object(Bucket=name, Key="sha", Body=body, ChecksumAlgorithm="SHA256")
    head_sha = c.s3.head_object(Bucket=name, Key="sha", ChecksumMode="ENABLED")
    code, status, error, _r = error_code(c.s3.put_object, Bucket=name, Key="tampered", Body=body,
                                         ChecksumCRC32=crc32_b64(b"something else"))
    c.obs = {"put_crc32": put.get("ChecksumCRC32"), "get_crc32": got.get("ChecksumCRC32"),
             "put_sha256": sha.get("ChecksumSHA256"), "head_sha256": head_sha.get("ChecksumSHA256"),
             "tampered": [status, code], "tampered_stored": c.exists(name, "tampered")}
    c.equal(data, body, "body")
    c.equal(put.get("ChecksumCRC32"), crc32_b64(body), "PutObject ChecksumCRC32")
    c.equal(got.get("ChecksumCRC32"), crc32_b64(body), "GetObject ChecksumCRC32 (ChecksumMode=ENABLED)")
    c.equal(sha.get("ChecksumSHA256"), sha256_b64(body), "PutObject ChecksumSHA256")
    c.equal(head_sha.get("ChecksumSHA256"), sha256_b64(body), "HeadObject ChecksumSHA256 (ChecksumMode=ENABLED)")
    c.equal((status, code), (400, "BadDigest"), "a wrong x-amz-checksum-crc32")
    c.expect(not c.obs["tampered_stored"], "the object with a wrong checksum was stored")


@check("s3 Range reads: bytes=0-9, 5-, -3, 20-1000; beyond the end -> 416 InvalidRange")
def _(c):
    name = c.bucket("range")
    c.s3.put_object(Bucket=name, Key="abc", Body=ALPHABET)
    cases = {"bytes=0-9": (b"abcdefghij", "bytes 0-9/26"), "bytes=5-": (ALPHABET[5:], "bytes 5-25/26"),
             "bytes=-3": (b"xyz", "bytes 23-25/26"), "bytes=20-1000": (ALPHABET[20:], "bytes 20-25/26")}
    for header, (data, content_range) in cases.items():
        got = c.s3.get_object(Bucket=name, Key="abc", Range=header)
        body = got["Body"].read()
        c.obs[header] = {"status": got["ResponseMetadata"]["HTTPStatusCode"], "body": body.decode(),
                         "ContentRange": got.get("ContentRange"), "ContentLength": got.get("ContentLength")}
        c.equal(c.obs[header], {"status": 206, "body": data.decode(), "ContentRange": content_range,
                                "ContentLength": len(data)}, f"GetObject Range {header}")
    code, status, error, _r = error_code(c.s3.get_object, Bucket=name, Key="abc", Range="bytes=26-30")
    c.obs["beyond_end"] = [status, code]
    c.equal((status, code), (416, "InvalidRange"), "GetObject Range bytes=26-30 of a 26-byte object")


@check("s3 Range with several ranges -> 200 and the whole object")
def _(c):
    name = c.bucket("multirange")
    c.s3.put_object(Bucket=name, Key="abc", Body=ALPHABET)
    got = c.s3.get_object(Bucket=name, Key="abc", Range="bytes=0-1,4-5")
    body = got["Body"].read()
    c.obs = {"status": got["ResponseMetadata"]["HTTPStatusCode"], "body": body.decode(),
             "ContentRange": got.get("ContentRange")}
    c.equal(c.obs, {"status": 200, "body": ALPHABET.decode(), "ContentRange": None}, "GetObject Range bytes=0-1,4-5")


@check("s3 conditional GET/HEAD: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since")
def _(c):
    name = c.bucket("cond")
    etag = c.s3.put_object(Bucket=name, Key="c", Body=b"conditional")["ETag"]
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    past = datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc)
    cases = [
        ("If-Match right", {"IfMatch": etag}, 200, None),
        ("If-Match mismatch", {"IfMatch": '"0123456789abcdef0123456789abcdef"'}, 412, "PreconditionFailed"),
        ("If-None-Match match", {"IfNoneMatch": etag}, 304, None),
        ("If-None-Match other", {"IfNoneMatch": '"0123456789abcdef0123456789abcdef"'}, 200, None),
        ("If-Modified-Since future", {"IfModifiedSince": future}, 304, None),
        ("If-Modified-Since past", {"IfModifiedSince": past}, 200, None),
        ("If-Unmodified-Since past", {"IfUnmodifiedSince": past}, 412, "PreconditionFailed"),
        ("If-Unmodified-Since future", {"IfUnmodifiedSince": future}, 200, None),
    ]
    for label, kwargs, status, code in cases:
        for operation in ("get_object", "head_object"):
            try:
                response = getattr(c.s3, operation)(Bucket=name, Key="c", **kwargs)
                got = [response["ResponseMetadata"]["HTTPStatusCode"], None]
            except ClientError as e:
                got = [e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Code")]
            verb = operation.split("_")[0].upper()
            # HEAD errors have no body, so only the status is comparable there; a GET 412 carries the code.
            observed = got if verb == "GET" and status == 412 else [got[0]]
            c.obs[f"{verb} {label}"] = observed
            c.equal(observed, [status, code] if verb == "GET" and status == 412 else [status], f"{verb} {label}")


@check("s3 GetObject of a missing key -> NoSuchKey 404 (Key element); HEAD -> 404 with no body")
def _(c):
    name = c.bucket("nokey")
    code, status, error, _r = error_code(c.s3.get_object, Bucket=name, Key="missing/key.txt")
    head = c.run.raw("HEAD", c.path(name, "missing/key.txt"))
    missing_bucket = c.run.raw("GET", c.path(c.run.unique("nobucket"), "k"))
    c.obs = {"get": [status, code, error.get("Key")], "head": [head.status, head.body.decode(errors="replace")],
             "missing_bucket": [missing_bucket.status, missing_bucket.code]}
    c.equal((status, code), (404, "NoSuchKey"), "GetObject of a missing key")
    c.equal(error.get("Key"), "missing/key.txt", "<Key> of the NoSuchKey error")
    c.equal((head.status, head.body), (404, b""), "HeadObject of a missing key")
    c.equal((missing_bucket.status, missing_bucket.code), (404, "NoSuchBucket"), "GetObject in a missing bucket")


@check("s3 DeleteObject of a missing key -> 204")
def _(c):
    name = c.bucket("delmissing")
    status = c.s3.delete_object(Bucket=name, Key="never-was")["ResponseMetadata"]["HTTPStatusCode"]
    c.obs = {"status": status}
    c.equal(status, 204, "DeleteObject of a missing key")


@check("s3 DeleteObjects batch: verbose and Quiet")
def _(c):
    name = c.bucket("batchdel")
    for key in ("a", "b", "c", "d"):
        c.s3.put_object(Bucket=name, Key=key, Body=key.encode())
    verbose = c.s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "missing"}]})
    quiet = c.s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "c"}, {"Key": "missing2"}], "Quiet": True})
    c.obs = {"verbose_deleted": sorted(d["Key"] for d in verbose.get("Deleted", [])),
             "verbose_errors": verbose.get("Errors", []),
             "quiet_deleted": quiet.get("Deleted", []), "quiet_errors": quiet.get("Errors", []),
             "left": c.keys(name)}
    c.equal(c.obs["verbose_deleted"], ["a", "b", "missing"], "Deleted of a verbose DeleteObjects (missing keys count as deleted)")
    c.equal(c.obs["verbose_errors"], [], "Errors of a verbose DeleteObjects")
    c.equal((c.obs["quiet_deleted"], c.obs["quiet_errors"]), ([], []), "a Quiet DeleteObjects lists nothing")
    c.equal(c.obs["left"], ["d"], "objects left")


ODD_KEYS = ["with space.txt", "ünïcødé/日本語.txt", "plus+sign", "percent%20literal%", "double//slash", "trailing/",
            "../../etc/passwd", "./dot/./segments/../x", "query?x=1&y=2#frag", "tilde~star*quote'paren()", "a\tb"]


@check("s3 odd keys (space, unicode, +, %, //, ../, ?, #) round-trip and list exactly")
def _(c):
    name = c.bucket("keys")
    for index, key in enumerate(ODD_KEYS):
        c.s3.put_object(Bucket=name, Key=key, Body=f"body {index}".encode())
    back = {key: c.s3.get_object(Bucket=name, Key=key)["Body"].read().decode() for key in ODD_KEYS}
    listed = c.keys(name)
    # The same traversal key sent raw, percent-encoded dots and all: still a key, never a file.
    raw = c.run.raw("GET", f"/{name}/%2E%2E/%2E%2E/etc/passwd")
    other = c.bucket("keys-other")
    outside = c.run.raw("GET", f"/{other}/../../etc/passwd")
    c.obs = {"read_back": back, "listed": listed, "raw_encoded_dots": [raw.status, raw.body.decode(errors="replace")[:40]],
             "other_bucket": [outside.status, outside.code]}
    for index, key in enumerate(ODD_KEYS):
        c.equal(back[key], f"body {index}", f"body of key {key!r}")
    c.equal(listed, sorted(ODD_KEYS, key=lambda k: k.encode()), "ListObjectsV2 keys (UTF-8 binary order)")
    c.equal((raw.status, raw.body), (200, f"body {ODD_KEYS.index('../../etc/passwd')}".encode()),
            "GET /bucket/%2E%2E/%2E%2E/etc/passwd reads the object")
    c.equal((outside.status, outside.code), (404, "NoSuchKey"),
            "GET /other-bucket/../../etc/passwd (no such object there)")


@check("s3 key of 1024 bytes accepted, 1025 bytes -> KeyTooLongError 400")
def _(c):
    name = c.bucket("longkey")
    ok_key = "k/" + "é" * 511   # 2 + 1022 = 1024 bytes of UTF-8
    assert len(ok_key.encode()) == 1024
    c.s3.put_object(Bucket=name, Key=ok_key, Body=b"x")
    code, status, _e, _r = error_code(c.s3.put_object, Bucket=name, Key=ok_key + "x", Body=b"x")
    c.obs = {"1025": [status, code], "listed_only_1024": c.keys(name) == [ok_key]}
    c.equal((status, code), (400, "KeyTooLongError"), "PutObject with a 1025-byte key")
    c.expect(c.obs["listed_only_1024"], "the bucket does not hold just the 1024-byte key")


@check("s3 empty object: ETag of the empty body, length 0")
def _(c):
    name = c.bucket("empty")
    put = c.s3.put_object(Bucket=name, Key="empty", Body=b"")
    got = c.s3.get_object(Bucket=name, Key="empty")
    data = got["Body"].read()
    c.obs = {"etag": put["ETag"], "length": got["ContentLength"], "body": data.decode()}
    c.equal(put["ETag"], '"d41d8cd98f00b204e9800998ecf8427e"', "ETag")
    c.equal((got["ContentLength"], data), (0, b""), "GetObject of the empty object")


@check("s3 5 MiB object streamed up (file object) and down (iter_chunks)")
def _(c):
    name = c.bucket("big")
    data = blob(5 * MIB, 5)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        put = c.s3.put_object(Bucket=name, Key="five", Body=f)
    got = c.s3.get_object(Bucket=name, Key="five")
    digest, size = hashlib.md5(), 0
    for chunk in got["Body"].iter_chunks(256 * KIB):
        digest.update(chunk)
        size += len(chunk)
    c.obs = {"etag": put["ETag"], "size": size, "md5": digest.hexdigest()}
    c.equal(put["ETag"], f'"{md5_hex(data)}"', "ETag")
    c.equal((size, digest.hexdigest()), (len(data), md5_hex(data)), "size and MD5 read back")


# === Listing ==============================================================================================

LIST_KEYS = ["a/1.txt", "a/2.txt", "a/b/3.txt", "a/b/4.txt", "c/5.txt", "d.txt", "e.txt"]


@check("s3 ListObjectsV2 Prefix, Delimiter (CommonPrefixes), KeyCount")
def _(c):
    name = c.bucket("list")
    for key in LIST_KEYS:
        c.s3.put_object(Bucket=name, Key=key, Body=key.encode())
    top = c.s3.list_objects_v2(Bucket=name, Delimiter="/")
    under_a = c.s3.list_objects_v2(Bucket=name, Prefix="a/", Delimiter="/")
    prefix_only = c.s3.list_objects_v2(Bucket=name, Prefix="a/b")
    c.obs = {
        "top": {"keys": [o["Key"] for o in top.get("Contents", [])],
                "prefixes": [p["Prefix"] for p in top.get("CommonPrefixes", [])], "KeyCount": top.get("KeyCount")},
        "a/": {"keys": [o["Key"] for o in under_a.get("Contents", [])],
               "prefixes": [p["Prefix"] for p in under_a.get("CommonPrefixes", [])], "KeyCount": under_a.get("KeyCount")},
        "a/b": {"keys": [o["Key"] for o in prefix_only.get("Contents", [])], "KeyCount": prefix_only.get("KeyCount")},
        "entry": {k: (v if k != "LastModified" else "datetime") for k, v in top["Contents"][0].items()
                  if k in ("Key", "Size", "ETag", "StorageClass", "LastModified")},
    }
    c.equal(c.obs["top"], {"keys": ["d.txt", "e.txt"], "prefixes": ["a/", "c/"], "KeyCount": 4}, "Delimiter /")
    c.equal(c.obs["a/"], {"keys": ["a/1.txt", "a/2.txt"], "prefixes": ["a/b/"], "KeyCount": 3}, "Prefix a/ Delimiter /")
    c.equal(c.obs["a/b"], {"keys": ["a/b/3.txt", "a/b/4.txt"], "KeyCount": 2}, "Prefix a/b")
    c.equal(c.obs["entry"], {"Key": "d.txt", "Size": 5, "ETag": f'"{md5_hex(b"d.txt")}"', "StorageClass": "STANDARD",
                             "LastModified": "datetime"}, "a Contents entry")


@check("s3 ListObjectsV2 MaxKeys 7 + ContinuationToken through 25 keys; StartAfter")
def _(c):
    name = c.bucket("page")
    keys = sorted(f"k{i:02d}" for i in range(25))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: c.s3.put_object(Bucket=name, Key=k, Body=b"."), keys))
    pages, token = [], None
    while True:
        kwargs = {"Bucket": name, "MaxKeys": 7}
        if token:
            kwargs["ContinuationToken"] = token
        page = c.s3.list_objects_v2(**kwargs)
        pages.append({"keys": [o["Key"] for o in page.get("Contents", [])], "KeyCount": page.get("KeyCount"),
                      "IsTruncated": page.get("IsTruncated"), "MaxKeys": page.get("MaxKeys"),
                      "has_next_token": "NextContinuationToken" in page})
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or len(pages) > 10:
            break
    after = c.s3.list_objects_v2(Bucket=name, StartAfter="k19", MaxKeys=3)
    c.obs = {"pages": pages, "start_after": {"keys": [o["Key"] for o in after.get("Contents", [])],
                                             "StartAfter": after.get("StartAfter"), "IsTruncated": after.get("IsTruncated")}}
    c.equal([len(p["keys"]) for p in pages], [7, 7, 7, 4], "page sizes")
    c.equal([k for p in pages for k in p["keys"]], keys, "all pages together")
    c.equal([p["KeyCount"] for p in pages], [7, 7, 7, 4], "KeyCount of each page")
    c.equal([p["IsTruncated"] for p in pages], [True, True, True, False], "IsTruncated of each page")
    c.equal([p["has_next_token"] for p in pages], [True, True, True, False], "NextContinuationToken present")
    c.equal(c.obs["start_after"], {"keys": ["k20", "k21", "k22"], "StartAfter": "k19", "IsTruncated": True}, "StartAfter k19, MaxKeys 3")


@check("s3 ListObjectsV2 EncodingType=url returns percent-encoded keys")
def _(c):
    name = c.bucket("enc")
    keys = ["enc/a b+c&ü.txt", "enc/plain.txt"]
    for key in keys:
        c.s3.put_object(Bucket=name, Key=key, Body=b".")
    explicit = c.s3.list_objects_v2(Bucket=name, EncodingType="url")   # botocore decodes only when it set it itself
    returned = [o["Key"] for o in explicit.get("Contents", [])]
    automatic = [o["Key"] for o in c.s3.list_objects_v2(Bucket=name).get("Contents", [])]
    c.obs = {"EncodingType": explicit.get("EncodingType"), "decoded": [urllib.parse.unquote_plus(k) for k in returned],
             "encoded_differs": returned[0] != keys[0], "no_raw_space_or_non_ascii": all(" " not in k and k.isascii() for k in returned),
             "automatic": automatic}
    c.equal(explicit.get("EncodingType"), "url", "EncodingType echoed")
    c.equal(c.obs["decoded"], keys, "keys, URL-decoded")
    c.expect(c.obs["no_raw_space_or_non_ascii"], f"keys not encoded: {returned}")
    c.equal(automatic, keys, "keys as boto3 decodes them")


@check("s3 ListObjectsV2 of an empty bucket")
def _(c):
    name = c.bucket("emptylist")
    page = c.s3.list_objects_v2(Bucket=name)
    c.obs = {"Contents": page.get("Contents"), "KeyCount": page.get("KeyCount"), "IsTruncated": page.get("IsTruncated"),
             "Name": page.get("Name")}
    c.equal(c.obs, {"Contents": None, "KeyCount": 0, "IsTruncated": False, "Name": name}, "ListObjectsV2 of an empty bucket")


@check("s3 ListObjects (v1) Marker, MaxKeys, NextMarker with a delimiter")
def _(c):
    name = c.bucket("v1")
    for key in LIST_KEYS:
        c.s3.put_object(Bucket=name, Key=key, Body=b".")
    first = c.s3.list_objects(Bucket=name, MaxKeys=3)
    second = c.s3.list_objects(Bucket=name, Marker=first["Contents"][-1]["Key"], MaxKeys=3)
    delimited = c.s3.list_objects(Bucket=name, Delimiter="/", MaxKeys=2)
    c.obs = {"first": [o["Key"] for o in first.get("Contents", [])], "first_truncated": first.get("IsTruncated"),
             "second": [o["Key"] for o in second.get("Contents", [])], "second_marker": second.get("Marker"),
             "delimited": {"keys": [o["Key"] for o in delimited.get("Contents", [])],
                           "prefixes": [p["Prefix"] for p in delimited.get("CommonPrefixes", [])],
                           "NextMarker": delimited.get("NextMarker"), "IsTruncated": delimited.get("IsTruncated")}}
    c.equal(c.obs["first"], LIST_KEYS[:3], "first page")
    c.equal(c.obs["first_truncated"], True, "IsTruncated of the first page")
    c.equal(c.obs["second"], LIST_KEYS[3:6], "page after Marker")
    c.equal(c.obs["delimited"], {"keys": [], "prefixes": ["a/", "c/"], "NextMarker": "c/", "IsTruncated": True},
            "Delimiter /, MaxKeys 2")


# === Multipart ==============================================================================================

PART = 5 * MIB


@check("s3 multipart: create, upload parts, list parts, complete (ETag md5-of-md5s-N), read back")
def _(c):
    name = c.bucket("mpu")
    parts = [blob(PART, 11), blob(PART, 12), blob(1234, 13)]
    upload = c.s3.create_multipart_upload(Bucket=name, Key="mp.bin", ContentType="application/x-test",
                                          Metadata={"origin": "suite"})
    upload_id = upload["UploadId"]
    etags = [c.s3.upload_part(Bucket=name, Key="mp.bin", UploadId=upload_id, PartNumber=i + 1, Body=p)["ETag"]
             for i, p in enumerate(parts)]
    listed = c.s3.list_parts(Bucket=name, Key="mp.bin", UploadId=upload_id)
    uploads = [u["Key"] for u in c.s3.list_multipart_uploads(Bucket=name).get("Uploads", [])]
    done = c.s3.complete_multipart_upload(Bucket=name, Key="mp.bin", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    got = c.s3.get_object(Bucket=name, Key="mp.bin")
    data = got["Body"].read()
    after = c.s3.list_multipart_uploads(Bucket=name).get("Uploads", [])
    c.obs = {"part_etags": etags, "listed_parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"], "Size": p["Size"]}
                                                   for p in listed.get("Parts", [])],
             "in_progress": uploads, "complete_etag": done.get("ETag"), "complete_key": done.get("Key"),
             "complete_bucket": done.get("Bucket"), "get_etag": got.get("ETag"), "length": len(data),
             "same_bytes": data == b"".join(parts), "content_type": got.get("ContentType"),
             "metadata": got.get("Metadata"), "uploads_after": after}
    c.equal(etags, [f'"{md5_hex(p)}"' for p in parts], "part ETags")
    c.equal(c.obs["listed_parts"], [{"PartNumber": i + 1, "ETag": f'"{md5_hex(p)}"', "Size": len(p)}
                                    for i, p in enumerate(parts)], "ListParts")
    c.equal(uploads, ["mp.bin"], "ListMultipartUploads")
    c.equal(done.get("ETag"), multipart_etag(parts), "CompleteMultipartUpload ETag")
    c.equal(got.get("ETag"), multipart_etag(parts), "GetObject ETag")
    c.expect(c.obs["same_bytes"], "bytes read back differ from the parts")
    c.equal((got.get("ContentType"), got.get("Metadata")), ("application/x-test", {"origin": "suite"}),
            "Content-Type and metadata from CreateMultipartUpload")
    c.equal(after, [], "uploads in progress after completion")


@check("s3 multipart abort -> NoSuchUpload 404 on UploadPart and ListParts")
def _(c):
    name = c.bucket("abort")
    upload_id = c.s3.create_multipart_upload(Bucket=name, Key="a")["UploadId"]
    c.s3.upload_part(Bucket=name, Key="a", UploadId=upload_id, PartNumber=1, Body=b"part")
    aborted = c.s3.abort_multipart_upload(Bucket=name, Key="a", UploadId=upload_id)["ResponseMetadata"]["HTTPStatusCode"]
    code, status, _e, _r = error_code(c.s3.upload_part, Bucket=name, Key="a", UploadId=upload_id, PartNumber=2, Body=b"x")
    code2, status2, _e, _r = error_code(c.s3.list_parts, Bucket=name, Key="a", UploadId=upload_id)
    c.obs = {"abort_status": aborted, "upload_part": [status, code], "list_parts": [status2, code2],
             "object": c.exists(name, "a")}
    c.equal(aborted, 204, "AbortMultipartUpload status")
    c.equal((status, code), (404, "NoSuchUpload"), "UploadPart after abort")
    c.equal((status2, code2), (404, "NoSuchUpload"), "ListParts after abort")
    c.expect(not c.obs["object"], "an aborted upload left an object")


def complete_error(c, stem, parts, listing):
    name = c.bucket(stem)
    upload_id = c.s3.create_multipart_upload(Bucket=name, Key="x")["UploadId"]
    etags = {}
    for number, data in parts.items():
        etags[number] = c.s3.upload_part(Bucket=name, Key="x", UploadId=upload_id, PartNumber=number, Body=data)["ETag"]
    code, status, _e, _r = error_code(c.s3.complete_multipart_upload, Bucket=name, Key="x", UploadId=upload_id,
                                      MultipartUpload={"Parts": listing(etags)})
    c.obs = {"status": status, "code": code, "object": c.exists(name, "x")}
    return status, code


def no_object_left(c):
    c.expect(not c.obs["object"], "a failed CompleteMultipartUpload left an object")


@check("s3 multipart complete with a wrong part ETag -> InvalidPart 400")
def _(c):
    got = complete_error(c, "badpart", {1: b"only part"},
                         lambda e: [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}])
    c.equal(got, (400, "InvalidPart"), "CompleteMultipartUpload with a wrong ETag")
    no_object_left(c)


@check("s3 multipart parts out of order -> InvalidPartOrder 400")
def _(c):
    data = blob(PART, 21)
    got = complete_error(c, "order", {1: data, 2: data},
                         lambda e: [{"PartNumber": 2, "ETag": e[2]}, {"PartNumber": 1, "ETag": e[1]}])
    c.equal(got, (400, "InvalidPartOrder"), "CompleteMultipartUpload listing part 2 before part 1")
    no_object_left(c)


@check("s3 multipart non-last part under 5 MiB -> EntityTooSmall 400")
def _(c):
    got = complete_error(c, "small", {1: b"small first part", 2: b"last"},
                         lambda e: [{"PartNumber": 1, "ETag": e[1]}, {"PartNumber": 2, "ETag": e[2]}])
    c.equal(got, (400, "EntityTooSmall"), "CompleteMultipartUpload with a 16-byte first part")
    no_object_left(c)


@check("s3 boto3 upload_file (TransferConfig multipart) of 12 MiB and download_file")
def _(c):
    name = c.bucket("transfer")
    data = blob(12 * MIB, 31)
    folder = tempfile.mkdtemp(prefix="s3-suite-")
    try:
        source, target = os.path.join(folder, "up.bin"), os.path.join(folder, "down.bin")
        with open(source, "wb") as f:
            f.write(data)
        config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=3)
        c.s3.upload_file(source, name, "t.bin", Config=config)
        head = c.s3.head_object(Bucket=name, Key="t.bin")
        c.s3.download_file(name, "t.bin", target, Config=config)
        with open(target, "rb") as f:
            back = f.read()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    parts = [data[i:i + 5 * MIB] for i in range(0, len(data), 5 * MIB)]
    c.obs = {"etag": head["ETag"], "length": head["ContentLength"], "same_bytes": back == data}
    c.equal(head["ETag"], multipart_etag(parts), "ETag of a 3-part upload")
    c.expect(back == data, "downloaded bytes differ")


@check("s3 AWS CLI cp of 40 MiB (multipart) up and back, ls, rm --recursive")
def _(c):
    name = c.bucket("cli")
    folder = tempfile.mkdtemp(prefix="s3-suite-cli-")
    try:
        data = os.urandom(40 * MIB)
        source, target = os.path.join(folder, "big.bin"), os.path.join(folder, "back.bin")
        with open(source, "wb") as f:
            f.write(data)
        c.run.aws("s3", "cp", source, f"s3://{name}/dir/big.bin", "--only-show-errors")
        c.run.aws("s3", "cp", source.replace("big.bin", "big.bin"), f"s3://{name}/dir/sub/copy.bin", "--only-show-errors")
        head = c.s3.head_object(Bucket=name, Key="dir/big.bin")
        c.run.aws("s3", "cp", f"s3://{name}/dir/big.bin", target, "--only-show-errors")
        with open(target, "rb") as f:
            same = f.read() == data
        listing = c.run.aws("s3", "ls", f"s3://{name}/dir/")
        recursive = c.run.aws("s3", "ls", "--recursive", f"s3://{name}/")
        c.run.aws("s3", "rm", "--recursive", f"s3://{name}/dir/", "--only-show-errors")
        left = c.keys(name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ls_lines = [line.split()[-1] for line in listing.splitlines() if line.strip()]
    rec_lines = [line.split()[-1] for line in recursive.splitlines() if line.strip()]
    c.obs = {"etag_is_multipart": bool(re.fullmatch(r'"[0-9a-f]{32}-5"', head["ETag"])), "length": head["ContentLength"],
             "same_bytes": same, "ls": ls_lines, "ls_recursive": rec_lines, "left_after_rm": left}
    c.expect(c.obs["etag_is_multipart"], f"ETag {head['ETag']} is not that of a 5-part upload (8 MiB CLI chunks)")
    c.equal(head["ContentLength"], 40 * MIB, "ContentLength")
    c.expect(same, "bytes copied back differ")
    c.equal(ls_lines, ["sub/", "big.bin"], "aws s3 ls s3://bucket/dir/")
    c.equal(rec_lines, ["dir/big.bin", "dir/sub/copy.bin"], "aws s3 ls --recursive")
    c.equal(left, [], "objects left after aws s3 rm --recursive")


# === aws-chunked bodies ======================================================================================

def chunked_trailer_body(data: bytes, chunk: int, checksum: str) -> bytes:
    out = b""
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n" + f"x-amz-checksum-crc32:{checksum}\r\n\r\n".encode()


def put_chunked_trailer(c, bucket, key, data, checksum, chunk=64 * KIB):
    body = chunked_trailer_body(data, chunk, checksum)
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm": "CRC32",
               "Content-Type": "application/octet-stream"}
    return c.run.raw("PUT", c.path(bucket, key), headers=headers, body=body,
                     payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")


@check("s3 aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER body with an x-amz-checksum-crc32 trailer")
def _(c):
    name = c.bucket("chunked")
    data = blob(150 * KIB + 7, 41)
    resp = put_chunked_trailer(c, name, "trailer.bin", data, crc32_b64(data))
    c.obs["put"] = [resp.status, resp.code]
    c.equal(resp.status, 200, f"PUT with an aws-chunked body: {resp.body[:300]!r}")
    got = c.s3.get_object(Bucket=name, Key="trailer.bin", ChecksumMode="ENABLED")
    back = got["Body"].read()
    c.obs.update({"etag": resp.headers.get("etag"), "length": len(back), "same": back == data,
                  "content_encoding": got.get("ContentEncoding"), "crc32": got.get("ChecksumCRC32")})
    c.equal(resp.headers.get("etag"), f'"{md5_hex(data)}"', "ETag (MD5 of the decoded data)")
    c.expect(back == data, f"decoded bytes differ ({len(back)} read, {len(data)} sent)")
    c.expect(got.get("ContentEncoding") in (None, ""), f"Content-Encoding {got.get('ContentEncoding')!r} kept (aws-chunked must be dropped)")
    c.equal(got.get("ChecksumCRC32"), crc32_b64(data), "ChecksumCRC32 from the trailer")


@check("s3 aws-chunked body with a wrong trailer checksum -> BadDigest 400, object not created")
def _(c):
    name = c.bucket("chunkbad")
    data = blob(100 * KIB, 42)
    resp = put_chunked_trailer(c, name, "bad.bin", data, crc32_b64(b"not the data"))
    c.obs = {"status": resp.status, "code": resp.code, "object": c.exists(name, "bad.bin")}
    c.equal((resp.status, resp.code), (400, "BadDigest"), "PUT with a wrong trailing checksum")
    c.expect(not c.obs["object"], "the object was created")


def put_signed_chunks(c, bucket, key, data, chunk=64 * KIB, tamper=False):
    """PUT with Content-Encoding aws-chunked and STREAMING-AWS4-HMAC-SHA256-PAYLOAD: the headers are
    signed by botocore, each chunk here (S3 API "Transferring Payload in Multiple Chunks")."""
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    encoded_length = sum(len(f"{len(p):x};chunk-signature=".encode()) + 64 + 2 + len(p) + 2 for p in pieces)
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "Content-Length": str(encoded_length), "Content-Type": "application/octet-stream"}
    request = AWSRequest(method="PUT", url=f"http://{c.run.netloc}{c.path(bucket, key)}", data=b"", headers=headers)
    PresetPayloadAuth(c.run.credentials(), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD").add_auth(request)
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    timestamp = request.headers["X-Amz-Date"]
    scope = f"{timestamp[:8]}/{REGION}/s3/aws4_request"
    key_bytes = signing_key(c.run.secret_key, timestamp[:8])
    body, previous = b"", seed
    for index, piece in enumerate(pieces):
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", timestamp, scope, previous, EMPTY_SHA256,
                             hashlib.sha256(piece).hexdigest()])
        signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
        sent = piece
        if tamper and index == 1:
            sent = bytes([piece[0] ^ 0x01]) + piece[1:]   # the data changed after signing
        body += f"{len(piece):x};chunk-signature={signature}\r\n".encode() + sent + b"\r\n"
        previous = signature
    assert len(body) == encoded_length
    out = {k: v for k, v in request.headers.items()}
    out["Host"] = c.run.netloc
    return c.run.send("PUT", c.path(bucket, key), headers=out, body=body)


@check("s3 aws-chunked STREAMING-AWS4-HMAC-SHA256-PAYLOAD with chunk signatures")
def _(c):
    name = c.bucket("signedchunks")
    data = blob(200 * KIB + 3, 43)
    resp = put_signed_chunks(c, name, "signed.bin", data)
    c.obs["put"] = [resp.status, resp.code]
    c.equal(resp.status, 200, f"PUT with signed chunks: {resp.body[:300]!r}")
    back = c.s3.get_object(Bucket=name, Key="signed.bin")["Body"].read()
    c.obs.update({"etag": resp.headers.get("etag"), "same": back == data})
    c.equal(resp.headers.get("etag"), f'"{md5_hex(data)}"', "ETag (MD5 of the decoded data)")
    c.expect(back == data, "decoded bytes differ")


@check("s3 aws-chunked signed chunks with a tampered chunk -> SignatureDoesNotMatch 403, object not created",
       ours_only=True)
def _(c):
    name = c.bucket("tamperedchunks")
    resp = put_signed_chunks(c, name, "tampered.bin", blob(200 * KIB, 44), tamper=True)
    c.obs = {"status": resp.status, "code": resp.code, "object": c.exists(name, "tampered.bin")}
    c.equal((resp.status, resp.code), (403, "SignatureDoesNotMatch"), "PUT whose second chunk changed after signing")
    c.expect(not c.obs["object"], "the object was created")


# === Presigned URLs ==========================================================================================

@check("s3 presigned GET, PUT, HEAD, DELETE with plain HTTP")
def _(c):
    name = c.bucket("presign")
    s3 = c.s3
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": name, "Key": "p/ré port.txt"}, ExpiresIn=300)
    put = c.run.url(put_url, "PUT", body=b"presigned body")
    get = c.run.url(s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "p/ré port.txt"}))
    head = c.run.url(s3.generate_presigned_url("head_object", Params={"Bucket": name, "Key": "p/ré port.txt"}), "HEAD")
    typed_url = s3.generate_presigned_url("put_object", Params={"Bucket": name, "Key": "typed.json",
                                                                "ContentType": "application/json"})
    typed = c.run.url(typed_url, "PUT", headers={"Content-Type": "application/json"}, body=b"{}")
    typed_head = s3.head_object(Bucket=name, Key="typed.json")
    delete = c.run.url(s3.generate_presigned_url("delete_object", Params={"Bucket": name, "Key": "p/ré port.txt"}), "DELETE")
    c.obs = {"put": [put.status, put.headers.get("etag")], "get": [get.status, get.body.decode()],
             "head": [head.status, head.headers.get("content-length"), head.body.decode()],
             "typed_put": typed.status, "typed_content_type": typed_head.get("ContentType"),
             "signed_headers_in_url": urllib.parse.parse_qs(urllib.parse.urlsplit(typed_url).query).get("X-Amz-SignedHeaders"),
             "delete": delete.status, "exists_after_delete": c.exists(name, "p/ré port.txt")}
    c.equal(c.obs["put"], [200, f'"{md5_hex(b"presigned body")}"'], "presigned PUT")
    c.equal(c.obs["get"], [200, "presigned body"], "presigned GET")
    c.equal(c.obs["head"], [200, "14", ""], "presigned HEAD")
    c.equal((typed.status, typed_head.get("ContentType")), (200, "application/json"), "presigned PUT signed with ContentType")
    c.equal(delete.status, 204, "presigned DELETE")
    c.expect(not c.obs["exists_after_delete"], "object still there after the presigned DELETE")


def presigned_object(c, stem):
    name = c.bucket(stem)
    c.s3.put_object(Bucket=name, Key="k.txt", Body=b"secret")
    return name, c.s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k.txt"}, ExpiresIn=600)


@check("s3 presigned PUT signed with a ContentType and sent with another -> SignatureDoesNotMatch 403", ours_only=True)
def _(c):
    name = c.bucket("ctype")
    url = c.s3.generate_presigned_url("put_object", Params={"Bucket": name, "Key": "t", "ContentType": "image/png"})
    wrong = c.run.url(url, "PUT", headers={"Content-Type": "text/plain"}, body=b"x")
    missing = c.run.url(url, "PUT", body=b"x")
    c.obs = {"wrong": [wrong.status, wrong.code], "missing": [missing.status, missing.code], "object": c.exists(name, "t")}
    c.equal((wrong.status, wrong.code), (403, "SignatureDoesNotMatch"), "another Content-Type")
    c.equal((missing.status, missing.code), (403, "SignatureDoesNotMatch"), "no Content-Type")
    c.expect(not c.obs["object"], "the object was created")


@check("s3 presigned URL with tampered signature, key or expiry -> SignatureDoesNotMatch 403", ours_only=True)
def _(c):
    name, url = presigned_object(c, "tamper")
    c.s3.put_object(Bucket=name, Key="other.txt", Body=b"other")
    signature = re.search(r"X-Amz-Signature=([0-9a-f]{64})", url).group(1)
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    variants = {"signature": ("GET", url.replace(signature, flipped)),
                "key": ("GET", url.replace("/k.txt?", "/other.txt?")),
                "expiry": ("GET", url.replace("X-Amz-Expires=600", "X-Amz-Expires=601")),
                "method (GET URL sent as DELETE)": ("DELETE", url),
                "method (GET URL sent as PUT)": ("PUT", url)}
    for label, (method, variant) in variants.items():
        resp = c.run.url(variant, method, body=b"overwritten" if method == "PUT" else b"")
        c.obs[label] = [resp.status, resp.code]
        c.equal((resp.status, resp.code), (403, "SignatureDoesNotMatch"), f"presigned URL with a tampered {label}")
    resp = c.run.url(url)
    c.obs["untouched"] = [resp.status, resp.body.decode()]
    c.equal(c.obs["untouched"], [200, "secret"], "the untouched URL")


@check("s3 presigned URL expired -> AccessDenied 403 \"Request has expired\"")
def _(c):
    name = c.bucket("expired")
    c.s3.put_object(Bucket=name, Key="k.txt", Body=b"secret")
    url = c.s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k.txt"}, ExpiresIn=1)
    time.sleep(2.2)
    resp = c.run.url(url)
    c.obs = {"status": resp.status, "code": resp.code, "message": resp.error.get("Message"),
             "has_expires": "Expires" in resp.error}
    c.equal((resp.status, resp.code), (403, "AccessDenied"), "an expired presigned GET")
    c.equal(resp.error.get("Message"), "Request has expired", "message")


@check("s3 presigned URL with X-Amz-Expires > 604800 -> AuthorizationQueryParametersError 400")
def _(c):
    name, _url = presigned_object(c, "week")
    url = c.s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k.txt"}, ExpiresIn=604801)
    resp = c.run.url(url)
    week = c.run.url(c.s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k.txt"}, ExpiresIn=604800))
    c.obs = {"604801": [resp.status, resp.code], "604800": week.status}
    c.equal((resp.status, resp.code), (400, "AuthorizationQueryParametersError"), "X-Amz-Expires=604801")
    c.equal(week.status, 200, "X-Amz-Expires=604800")


@check("s3 presigned URL with an unknown access key -> InvalidAccessKeyId 403", ours_only=True)
def _(c):
    name, _url = presigned_object(c, "unknownkey")
    other = c.run.client(access_key="AKIAUNKNOWN" + c.run.suffix.upper(), secret_key="whatever")
    resp = c.run.url(other.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k.txt"}))
    c.obs = {"status": resp.status, "code": resp.code}
    c.equal((resp.status, resp.code), (403, "InvalidAccessKeyId"), "presigned GET by an unknown access key")


@check("s3 session token: presigned URL (X-Amz-Security-Token) and header-signed requests accepted")
def _(c):
    name, _url = presigned_object(c, "token")
    client = c.run.client(token="FQoGZXIvYXdzEXAMPLESESSIONTOKEN" + c.run.suffix)
    url = client.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k.txt"})
    resp = c.run.url(url)
    header_signed = client.get_object(Bucket=name, Key="k.txt")["Body"].read()
    c.obs = {"token_in_url": "X-Amz-Security-Token=" in url, "presigned": [resp.status, resp.body.decode()],
             "header_signed": header_signed.decode()}
    c.expect(c.obs["token_in_url"], "no X-Amz-Security-Token in the URL")
    c.equal(c.obs["presigned"], [200, "secret"], "presigned GET with a session token")
    c.equal(header_signed, b"secret", "GetObject signed with a session token")


@check("s3 presigned GET of a missing key -> NoSuchKey 404")
def _(c):
    name = c.bucket("presignmissing")
    resp = c.run.url(c.s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "nope"}))
    c.obs = {"status": resp.status, "code": resp.code, "key": resp.error.get("Key"),
             "content_type": resp.headers.get("content-type", "").split(";")[0]}
    c.equal((resp.status, resp.code, resp.error.get("Key")), (404, "NoSuchKey", "nope"), "presigned GET of a missing key")


# === Presigned POST ==========================================================================================

def form_body(fields, file_name="upload.txt", data=b"posted data", file_type="text/plain"):
    boundary = "----s3suite" + uuid.uuid4().hex
    out = b""
    for name, value in fields:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").encode() + value.encode() + b"\r\n"
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n"
            f"Content-Type: {file_type}\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def post_form(c, post, fields=None, url=None, **kwargs):
    """Sends a presigned POST: the fields boto3 made (updated with `fields`; a None value drops one)."""
    merged = dict(post["fields"])
    for name, value in (fields or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    body, content_type = form_body(list(merged.items()), **kwargs)
    return c.run.url(url or post["url"], "POST", headers={"Content-Type": content_type}, body=body)


@check("s3 presigned POST: 204 by default, 201 with PostResponse XML, 200")
def _(c):
    name = c.bucket("post")
    default = post_form(c, c.s3.generate_presigned_post(name, "uploads/default.txt"), data=b"default")
    created = post_form(c, c.s3.generate_presigned_post(name, "uploads/created.txt", Fields={"success_action_status": "201"},
                                                        Conditions=[{"success_action_status": "201"}]), data=b"created")
    ok = post_form(c, c.s3.generate_presigned_post(name, "uploads/ok.txt", Fields={"success_action_status": "200"},
                                                   Conditions=[{"success_action_status": "200"}]), data=b"ok")
    post_response = {field: xml_find(created.body, field) for field in ("Location", "Bucket", "Key", "ETag")}
    stored = {key: c.s3.get_object(Bucket=name, Key=key)["Body"].read().decode() for key in c.keys(name)}
    c.obs = {"default": [default.status, default.body.decode()], "201": [created.status, post_response],
             "200": [ok.status, ok.body.decode()], "stored": stored,
             "etag_header": default.headers.get("etag")}
    c.equal(c.obs["default"], [204, ""], "default success_action_status")
    c.equal(created.status, 201, "success_action_status 201")
    c.equal({k: post_response[k] for k in ("Bucket", "Key", "ETag")},
            {"Bucket": name, "Key": "uploads/created.txt", "ETag": f'"{md5_hex(b"created")}"'}, "PostResponse")
    c.expect((post_response["Location"] or "").endswith(f"/{name}/uploads/created.txt"),
             f"PostResponse Location {post_response['Location']!r}")
    c.equal(ok.status, 200, "success_action_status 200")
    c.equal(stored, {"uploads/created.txt": "created", "uploads/default.txt": "default", "uploads/ok.txt": "ok"}, "objects")
    c.equal(default.headers.get("etag"), f'"{md5_hex(b"default")}"', "ETag header of the 204")


@check("s3 presigned POST ${filename} key, Content-Type and x-amz-meta-* conditions")
def _(c):
    name = c.bucket("postfields")
    post = c.s3.generate_presigned_post(
        name, "uploads/${filename}", Fields={"Content-Type": "image/png", "x-amz-meta-owner": "suite"},
        Conditions=[["starts-with", "$Content-Type", "image/"], {"x-amz-meta-owner": "suite"},
                    ["content-length-range", 1, 1024]])
    resp = post_form(c, post, file_name="photo one.png", data=b"\x89PNG fake", file_type="image/png")
    c.obs["status"] = resp.status
    c.equal(resp.status, 204, f"POST: {resp.body[:300]!r}")
    head = c.s3.head_object(Bucket=name, Key="uploads/photo one.png")
    c.obs.update({"keys": c.keys(name), "content_type": head.get("ContentType"), "metadata": head.get("Metadata")})
    c.equal(c.obs["keys"], ["uploads/photo one.png"], "key from ${filename}")
    c.equal((head.get("ContentType"), head.get("Metadata")), ("image/png", {"owner": "suite"}),
            "Content-Type and x-amz-meta-owner from the form")


def post_violation(c, stem, make, status, code, message=None, fields=None, key_prefix="uploads/", target_bucket=None, **kwargs):
    name = c.bucket(stem)
    post = make(name)
    url = None
    if target_bucket:
        other = c.bucket(stem + "-other")
        url = post["url"].replace(f"/{name}", f"/{other}")
    resp = post_form(c, post, fields=fields, url=url, **kwargs)
    stored = c.keys(name) + (c.keys(other) if target_bucket else [])
    c.obs = {"status": resp.status, "code": resp.code, "stored": stored}
    if message:
        c.obs["message_has"] = message in resp.error.get("Message", "")
    c.failure(resp, status, code, f"POST ({stem})", message)
    c.equal(stored, [], "objects stored after the rejected POST")


@check("s3 presigned POST expired policy -> AccessDenied 403 \"Policy expired\"")
def _(c):
    post_violation(c, "postexpired", lambda b: c.s3.generate_presigned_post(b, "uploads/x.txt", ExpiresIn=-60),
                   403, "AccessDenied", "Policy expired")


@check("s3 presigned POST to another bucket than the policy's -> AccessDenied 403")
def _(c):
    post_violation(c, "postbucket", lambda b: c.s3.generate_presigned_post(b, "uploads/x.txt"), 403, "AccessDenied",
                   "Invalid according to Policy", target_bucket=True)


@check("s3 presigned POST key outside the allowed prefix -> AccessDenied 403")
def _(c):
    post_violation(c, "postprefix", lambda b: c.s3.generate_presigned_post(b, "uploads/${filename}"), 403, "AccessDenied",
                   "Invalid according to Policy", fields={"key": "elsewhere/x.txt"})


@check("s3 presigned POST larger than content-length-range -> EntityTooLarge 400")
def _(c):
    post_violation(c, "postlarge", lambda b: c.s3.generate_presigned_post(
        b, "uploads/x.txt", Conditions=[["content-length-range", 1, 10]]), 400, "EntityTooLarge", data=b"x" * 11)


@check("s3 presigned POST smaller than content-length-range -> EntityTooSmall 400")
def _(c):
    post_violation(c, "postsmall", lambda b: c.s3.generate_presigned_post(
        b, "uploads/x.txt", Conditions=[["content-length-range", 5, 10]]), 400, "EntityTooSmall", data=b"xy")


@check("s3 presigned POST Content-Type not matching its condition -> AccessDenied 403")
def _(c):
    post_violation(c, "posttype", lambda b: c.s3.generate_presigned_post(
        b, "uploads/x.txt", Fields={"Content-Type": "image/png"}, Conditions=[["starts-with", "$Content-Type", "image/"]]),
        403, "AccessDenied", "Invalid according to Policy", fields={"Content-Type": "text/plain"})


@check("s3 presigned POST field not in the policy -> AccessDenied 403 \"Extra input fields\"")
def _(c):
    post_violation(c, "postextra", lambda b: c.s3.generate_presigned_post(b, "uploads/x.txt"), 403, "AccessDenied",
                   "Extra input fields", fields={"x-amz-meta-sneaky": "1"})


@check("s3 presigned POST with a tampered signature -> SignatureDoesNotMatch 403", ours_only=True)
def _(c):
    def make(bucket):
        post = c.s3.generate_presigned_post(bucket, "uploads/x.txt")
        signature = post["fields"]["x-amz-signature"]
        post["fields"]["x-amz-signature"] = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        return post
    post_violation(c, "postsig", make, 403, "SignatureDoesNotMatch")


@check("s3 presigned POST with a tampered policy -> SignatureDoesNotMatch 403", ours_only=True)
def _(c):
    def make(bucket):
        post = c.s3.generate_presigned_post(bucket, "uploads/x.txt", Conditions=[["content-length-range", 1, 5]])
        policy = json.loads(base64.b64decode(post["fields"]["policy"]))
        policy["conditions"] = [cond for cond in policy["conditions"] if not (isinstance(cond, list) and cond[0] == "content-length-range")]
        post["fields"]["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()
        return post
    post_violation(c, "postpolicy", make, 403, "SignatureDoesNotMatch", data=b"x" * 100)


# === CORS =====================================================================================================

CORS = {"CORSRules": [
    {"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"],
     "AllowedHeaders": ["Content-Type", "x-amz-meta-*"], "ExposeHeaders": ["ETag", "x-amz-meta-note"], "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["https://*.example.org"], "AllowedMethods": ["GET"]},
]}


@check("s3 PutBucketCors / GetBucketCors / DeleteBucketCors (then NoSuchCORSConfiguration 404)")
def _(c):
    name = c.bucket("cors")
    code0, status0, _e, _r = error_code(c.s3.get_bucket_cors, Bucket=name)
    c.s3.put_bucket_cors(Bucket=name, CORSConfiguration=CORS)
    rules = c.s3.get_bucket_cors(Bucket=name)["CORSRules"]
    deleted = c.s3.delete_bucket_cors(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"]
    code, status, _e, _r = error_code(c.s3.get_bucket_cors, Bucket=name)
    c.obs = {"before": [status0, code0], "rules": [{k: v for k, v in r.items() if k != "ID"} for r in rules],
             "delete_status": deleted, "after": [status, code]}
    c.equal((status0, code0), (404, "NoSuchCORSConfiguration"), "GetBucketCors before any")
    c.equal(c.obs["rules"], CORS["CORSRules"], "rules read back")
    c.equal(deleted, 204, "DeleteBucketCors status")
    c.equal((status, code), (404, "NoSuchCORSConfiguration"), "GetBucketCors after DeleteBucketCors")


def cors_bucket(c, stem, configuration=None):
    name = c.bucket(stem)
    c.s3.put_bucket_cors(Bucket=name, CORSConfiguration=configuration or {"CORSRules": CORS["CORSRules"][:1]})
    c.s3.put_object(Bucket=name, Key="page.txt", Body=b"cors", Metadata={"note": "n"})
    return name


def split_header(value):
    return sorted(v.strip().lower() for v in (value or "").split(",") if v.strip())


@check("s3 CORS preflight OPTIONS from an allowed origin -> 200 with Access-Control-Allow-* headers")
def _(c):
    name = cors_bucket(c, "preflight")
    # A preflight for an upload of a new key (moto refuses preflights for a key that exists; see s3_diff).
    resp = c.run.raw("OPTIONS", c.path(name, "uploads/new.txt"), sign=False, headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, x-amz-meta-note"})
    h = resp.headers
    c.obs = {"status": resp.status, "allow_origin": h.get("access-control-allow-origin"),
             "allow_methods": split_header(h.get("access-control-allow-methods")),
             "allow_headers_cover_request": all(any(fnmatch.fnmatchcase(asked, allowed) for allowed in
                                                    split_header(h.get("access-control-allow-headers")))
                                                for asked in ("content-type", "x-amz-meta-note")),
             "max_age": h.get("access-control-max-age"), "expose": split_header(h.get("access-control-expose-headers"))}
    c.equal(resp.status, 200, f"preflight status: {resp.body[:200]!r}")
    c.equal(c.obs["allow_origin"], "https://app.example.com", "Access-Control-Allow-Origin")
    c.expect("put" in c.obs["allow_methods"], f"Access-Control-Allow-Methods {h.get('access-control-allow-methods')!r} lacks PUT")
    # S3 echoes the requested headers (or may list the rule's patterns [UNVERIFIED which]): either covers them.
    c.expect(c.obs["allow_headers_cover_request"],
             f"Access-Control-Allow-Headers {h.get('access-control-allow-headers')!r} does not cover content-type, x-amz-meta-note")
    c.equal(c.obs["max_age"], "600", "Access-Control-Max-Age")
    c.equal(c.obs["expose"], ["etag", "x-amz-meta-note"], "Access-Control-Expose-Headers")


@check("s3 CORS preflight answered by the first matching of several rules (wildcard origin https://*.example.org)")
def _(c):
    name = cors_bucket(c, "firstrule", CORS)
    first = c.run.raw("OPTIONS", c.path(name, "uploads/new.txt"), sign=False, headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
    wildcard = c.run.raw("OPTIONS", c.path(name, "uploads/new.txt"), sign=False, headers={
        "Origin": "https://sub.example.org", "Access-Control-Request-Method": "GET"})
    c.obs = {"first": [first.status, first.headers.get("access-control-allow-origin"),
                       first.headers.get("access-control-max-age")],
             "wildcard": [wildcard.status, wildcard.headers.get("access-control-allow-origin"),
                          split_header(wildcard.headers.get("access-control-allow-methods")),
                          wildcard.headers.get("access-control-max-age")]}
    c.equal(c.obs["first"], [200, "https://app.example.com", "600"], "preflight matching the first rule")
    c.equal(c.obs["wildcard"], [200, "https://sub.example.org", ["get"], None],
            "preflight matching only the second rule (https://*.example.org, GET, no MaxAgeSeconds)")


@check("s3 CORS preflight from a disallowed origin, method or header, or without CORS -> 403")
def _(c):
    name = cors_bucket(c, "preflightno")
    bare = c.bucket("nocors")
    cases = {
        "origin": (name, {"Origin": "https://evil.example.net", "Access-Control-Request-Method": "GET"}),
        "method": (name, {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"}),
        "header": (name, {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
                          "Access-Control-Request-Headers": "x-custom-header"}),
        "no CORS on the bucket": (bare, {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}),
    }
    for label, (bucket, headers) in cases.items():
        resp = c.run.raw("OPTIONS", c.path(bucket, "page.txt"), sign=False, headers=headers)
        c.obs[label] = [resp.status, resp.code, resp.headers.get("access-control-allow-origin")]
        c.equal(resp.status, 403, f"preflight with a disallowed {label}")
        c.expect(resp.headers.get("access-control-allow-origin") is None, f"{label}: Access-Control-Allow-Origin sent")
        if label == "origin":
            c.obs["message"] = resp.error.get("Message")
            c.equal(resp.code, "AccessForbidden", "error code of a refused preflight")
            c.expect("CORSResponse" in (resp.error.get("Message") or ""), f"message {resp.error.get('Message')!r}")


@check("s3 CORS GET with an Origin gets Access-Control-Allow-Origin and Vary: Origin")
def _(c):
    name = cors_bucket(c, "corsget")
    got = c.run.raw("GET", c.path(name, "page.txt"), headers={"Origin": "https://app.example.com"})
    other = c.run.raw("GET", c.path(name, "page.txt"), headers={"Origin": "https://evil.example.net"})
    c.obs = {"status": got.status, "allow_origin": got.headers.get("access-control-allow-origin"),
             "expose": split_header(got.headers.get("access-control-expose-headers")),
             "vary_origin": "origin" in split_header(got.headers.get("vary")),
             "other_origin": [other.status, other.headers.get("access-control-allow-origin")]}
    c.equal((got.status, got.body), (200, b"cors"), "GET with an Origin")
    c.equal(c.obs["allow_origin"], "https://app.example.com", "Access-Control-Allow-Origin")
    c.equal(c.obs["expose"], ["etag", "x-amz-meta-note"], "Access-Control-Expose-Headers")
    c.expect(c.obs["vary_origin"], f"Vary {got.headers.get('vary')!r} lacks Origin")
    c.equal(c.obs["other_origin"], [200, None], "GET from a disallowed origin: served, no CORS headers")


# === Virtual-hosted style =====================================================================================

@check("s3 virtual-hosted style (Host BUCKET.localhost:PORT): PUT, GET, list, presigned GET")
def _(c):
    name = c.bucket("vhost")
    host = f"{name}.localhost:{c.run.port}"
    put = c.run.raw("PUT", "/v/hello.txt", host=host, body=b"virtual", headers={"Content-Type": "text/plain"})
    get = c.run.raw("GET", "/v/hello.txt", host=host)
    listing = c.run.raw("GET", "/", query="list-type=2&prefix=v%2F", host=host)
    url = c.run.virtual_client().generate_presigned_url("get_object", Params={"Bucket": name, "Key": "v/hello.txt"})
    c.expect(url.startswith(f"http://{host}/v/hello.txt?"), f"presigned URL {url} is not virtual-hosted")
    presigned = c.run.url(url)
    c.obs = {"put": put.status, "get": [get.status, get.body.decode()], "list": [listing.status, xml_find(listing.body, "Key")],
             "presigned": [presigned.status, presigned.body.decode()], "path_style_view": c.keys(name)}
    c.equal(put.status, 200, f"virtual-hosted PUT: {put.body[:200]!r}")
    c.equal(c.obs["get"], [200, "virtual"], "virtual-hosted GET")
    c.equal(c.obs["list"], [200, "v/hello.txt"], "virtual-hosted ListObjectsV2")
    c.equal(c.obs["presigned"], [200, "virtual"], "virtual-hosted presigned GET")
    c.equal(c.obs["path_style_view"], ["v/hello.txt"], "the object seen path-style")


@check("s3 virtual-hosted style: presigned PUT and DELETE, DeleteObjects, NoSuchKey, CORS preflight")
def _(c):
    name = cors_bucket(c, "vhost2")
    host = f"{name}.localhost:{c.run.port}"
    vclient = c.run.virtual_client()

    def local(url):
        c.expect(url.startswith(f"http://{host}/"), f"presigned URL {url} is not virtual-hosted")
        return url

    put = c.run.url(local(vclient.generate_presigned_url("put_object", Params={"Bucket": name, "Key": "d/one.txt"})),
                    "PUT", body=b"one")
    c.s3.put_object(Bucket=name, Key="d/two.txt", Body=b"two")
    delete = c.run.url(local(vclient.generate_presigned_url("delete_object", Params={"Bucket": name, "Key": "d/one.txt"})),
                       "DELETE")
    batch_body = (b'<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>false</Quiet>'
                  b"<Object><Key>d/two.txt</Key></Object></Delete>")
    batch = c.run.raw("POST", "/", query="delete=", host=host, body=batch_body,
                      headers={"Content-MD5": md5_b64(batch_body), "Content-Type": "application/xml"})
    missing = c.run.raw("GET", "/d/none.txt", host=host)
    preflight = c.run.raw("OPTIONS", "/uploads/new.txt", host=host, sign=False, headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT"})
    c.obs = {"presigned_put": put.status, "presigned_delete": delete.status,
             "delete_objects": [batch.status, xml_find(batch.body, "Key")],
             "missing": [missing.status, missing.code, missing.error.get("Key")],
             "preflight": [preflight.status, preflight.headers.get("access-control-allow-origin")],
             "left": c.keys(name)}
    c.equal(put.status, 200, f"virtual-hosted presigned PUT: {put.body[:200]!r}")
    c.equal(delete.status, 204, "virtual-hosted presigned DELETE")
    c.equal(c.obs["delete_objects"], [200, "d/two.txt"], "virtual-hosted DeleteObjects")
    c.equal(c.obs["missing"], [404, "NoSuchKey", "d/none.txt"], "virtual-hosted GET of a missing key")
    c.equal(c.obs["preflight"], [200, "https://app.example.com"], "virtual-hosted CORS preflight")
    c.equal(c.obs["left"], ["page.txt"], "objects left")


@check("s3 HTTP/1.1 keep-alive: PUT, GET, HEAD, list, 404 on one connection (no Connection: close)")
def _(c):
    name = c.bucket("keepalive")
    connection = http.client.HTTPConnection(c.run.address, c.run.port, timeout=30)
    steps = [("PUT", c.path(name, "k"), "", b"keep"), ("GET", c.path(name, "k"), "", None),
             ("HEAD", c.path(name, "k"), "", None), ("GET", f"/{name}", "list-type=2", None),
             ("GET", c.path(name, "missing"), "", None), ("GET", c.path(name, "k"), "", None)]
    seen, sockets = [], set()
    try:
        for method, path, query, body in steps:
            request = AWSRequest(method=method, url=f"http://{c.run.netloc}{path}" + (f"?{query}" if query else ""),
                                 data=body or b"")
            PresetPayloadAuth(c.run.credentials(), hashlib.sha256(body or b"").hexdigest()).add_auth(request)
            headers = dict(request.headers.items())   # as urllib3 sends a bodiless request: no Content-Length
            connection.request(method, path + (f"?{query}" if query else ""), body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            sockets.add(id(connection.sock))
            seen.append([method, query or path.rsplit("/", 1)[-1], response.status,
                         (response.getheader("Connection") or "").lower() or None])
            if response.will_close:
                break
    finally:
        connection.close()
    c.obs = {"responses": seen}
    c.equal([s[2] for s in seen], [200, 200, 200, 200, 404, 200], f"statuses on one connection: {seen}")
    c.equal([s[3] for s in seen if s[3] == "close"], [], f"responses closing the connection: {seen}")


# === Errors ====================================================================================================

@check("s3 errors are application/xml with Code, Message, RequestId, and Key / BucketName / Resource")
def _(c):
    name = c.bucket("errors")
    no_key = c.run.raw("GET", c.path(name, "nope.txt"))
    no_bucket_name = c.run.unique("gone")
    no_bucket = c.run.raw("GET", f"/{no_bucket_name}", query="list-type=2")
    c.obs = {}
    for label, resp, code in (("NoSuchKey", no_key, "NoSuchKey"), ("NoSuchBucket", no_bucket, "NoSuchBucket")):
        error = resp.error
        c.obs[label] = {"status": resp.status, "content_type": resp.headers.get("content-type", "").split(";")[0].strip(),
                        "elements": sorted(k for k in error if k in ("Code", "Message", "RequestId", "Key", "BucketName", "Resource")),
                        "Key": error.get("Key"), "BucketName": error.get("BucketName"),
                        "request_id_header": bool(resp.headers.get("x-amz-request-id"))}
        c.equal((resp.status, error.get("Code")), (404, code), f"{label} status and code")
        c.equal(c.obs[label]["content_type"], "application/xml", f"{label} Content-Type")
        for element in ("Code", "Message", "RequestId"):
            c.expect(error.get(element), f"{label} error has no {element}: {resp.body[:300]!r}")
        c.expect(c.obs[label]["request_id_header"], f"{label}: no x-amz-request-id header")
    c.equal(no_key.error.get("Key"), "nope.txt", "NoSuchKey <Key>")
    c.equal(no_bucket.error.get("BucketName"), no_bucket_name, "NoSuchBucket <BucketName>")


@check("s3 subresource the emulator leaves out (?website, ?torrent) -> NotImplemented 501", ours_only=True)
def _(c):
    name = c.bucket("notimpl")
    c.s3.put_object(Bucket=name, Key="k", Body=b"x")
    website = c.run.raw("GET", f"/{name}", query="website=")
    torrent = c.run.raw("GET", c.path(name, "k"), query="torrent=")
    c.obs = {"website": [website.status, website.code], "torrent": [torrent.status, torrent.code]}
    c.equal(c.obs["website"], [501, "NotImplemented"], "GET ?website")
    c.equal(c.obs["torrent"], [501, "NotImplemented"], "GET object ?torrent")


# === Authentication (ours only: moto does not verify signatures) ===============================================

@check("s3 auth: no credentials -> AccessDenied 403", ours_only=True)
def _(c):
    name = c.bucket("anon")
    c.s3.put_object(Bucket=name, Key="k", Body=b"x")
    responses = {"list": c.run.raw("GET", f"/{name}", sign=False), "get": c.run.raw("GET", c.path(name, "k"), sign=False),
                 "put": c.run.raw("PUT", c.path(name, "anon"), sign=False, body=b"anon")}
    c.obs = {label: [r.status, r.code] for label, r in responses.items()}
    for label, resp in responses.items():
        c.equal((resp.status, resp.code), (403, "AccessDenied"), f"unsigned {label}")
    c.expect(not c.exists(name, "anon"), "the unsigned PUT stored an object")


@check("s3 auth: unknown access key -> InvalidAccessKeyId 403", ours_only=True)
def _(c):
    client = c.run.client(access_key="AKIAUNKNOWN" + c.run.suffix.upper(), secret_key="whatever")
    code, status, _e, _r = error_code(client.list_buckets)
    c.obs = {"code": code, "status": status}
    c.equal((status, code), (403, "InvalidAccessKeyId"), "ListBuckets with an unknown access key")


@check("s3 auth: wrong secret -> SignatureDoesNotMatch 403", ours_only=True)
def _(c):
    name = c.bucket("wrongsecret")
    client = c.run.client(access_key=c.run.access_key, secret_key=c.run.secret_key + "-wrong")
    code, status, _e, _r = error_code(client.put_object, Bucket=name, Key="k", Body=b"x")
    c.obs = {"code": code, "status": status, "object": c.exists(name, "k")}
    c.equal((status, code), (403, "SignatureDoesNotMatch"), "PutObject signed with a wrong secret")
    c.expect(not c.obs["object"], "the object was stored")


@check("s3 auth: x-amz-content-sha256 not matching the body -> XAmzContentSHA256Mismatch 400", ours_only=True)
def _(c):
    name = c.bucket("shamismatch")
    resp = c.run.raw("PUT", c.path(name, "k"), body=b"the body", payload_hash=hashlib.sha256(b"another body").hexdigest())
    c.obs = {"status": resp.status, "code": resp.code, "object": c.exists(name, "k")}
    c.equal((resp.status, resp.code), (400, "XAmzContentSHA256Mismatch"), "PUT whose body does not hash to x-amz-content-sha256")
    c.expect(not c.obs["object"], "the object was stored")


@check("s3 auth: request dated 20 minutes ago -> RequestTimeTooSkewed 403", ours_only=True, serial=True)
def _(c):
    past = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        code, status, _e, _r = error_code(c.run.client().list_buckets)
    c.obs = {"code": code, "status": status}
    c.equal((status, code), (403, "RequestTimeTooSkewed"), "ListBuckets dated 20 minutes ago")
    c.run.client().list_buckets()   # and the clock, restored, signs valid requests again


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
        try:
            ctx.cleanup()
        except Exception:  # noqa: BLE001
            pass
    observed = ctx.obs
    if status != "ok":
        observed = dict(observed) if isinstance(observed, dict) else {"observed": observed}
        observed["failed"] = True
    return status, why, run.normalize(json.loads(json.dumps(observed, default=str)))


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
    # The slowest checks first, so they overlap the many quick ones.
    slow = ("AWS CLI", "multipart", "upload_file", "expired", "5 MiB")
    order = sorted((s for s in selected if not s["serial"] and not (s["ours_only"] and args.name != "ours")),
                   key=lambda s: not any(word in s["name"] for word in slow))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {s["name"]: pool.submit(run_check, run, s) for s in order}
        for spec in selected:   # results in the order of the checks, as they become available
            name = spec["name"]
            if spec["ours_only"] and args.name != "ours":
                print(f"ok - {name} # SKIP ours only", flush=True)
                skipped += 1
                continue
            if spec["serial"]:   # alone, after the others: it patches botocore's clock
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
