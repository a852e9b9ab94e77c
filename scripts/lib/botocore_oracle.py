#!/usr/bin/env python3
"""Differential-testing oracle: random SigV4 signing cases, answered by botocore.

Generates pseudo-random signing inputs (deterministic for a given seed), has
botocore sign them with its clock frozen to the case's `now`, and prints one
JSON object to stdout (nothing else is written to stdout):

    {"botocore": "<version>", "cases": [ ... ]}

Usage:
    python3 scripts/lib/botocore_oracle.py --seed N --count K [--no-unsigned-headers]

Case kinds (round-robin over K):
  "presign"  S3 presigned URL from client.generate_presigned_url (s3v4).
             Fields: kind method bucket key expires region endpoint_url
             addressing_style content_type access_key secret_key
             session_token now expected_url
  "sign"     Header auth with botocore.auth.SigV4Auth on an AWSRequest.
             Fields: kind service method url headers body region access_key
             secret_key session_token now expected_canonical_request
             expected_string_to_sign expected_headers
  "sign-s3"  Header auth with botocore.auth.S3SigV4Auth. Fields as for "sign"
             (service is "s3") plus payload_hash (the value used as the last
             line of the canonical request, also sent as X-Amz-Content-SHA256).

`now` is "YYYYMMDDTHHMMSSZ" (UTC); `body` is text, signed as its UTF-8 bytes;
null means "absent". expected_canonical_request / expected_string_to_sign are
the exact strings add_auth used. expected_headers holds only the headers
botocore added or set, with botocore's spelling of the names.
--no-unsigned-headers omits headers botocore never signs (X-Amzn-Trace-Id,
Expect) from the generated inputs.
Requires only the standard library and botocore; the pure-Python signers are
used even when awscrt is installed (BOTO_DISABLE_CRT is set).
"""
import argparse
import datetime
import hashlib
import hmac
import json
import os
import random
import sys
from unittest import mock
from urllib.parse import quote

# If awscrt is importable (awscli pulls it in), botocore swaps its pure-Python
# SigV4 signers for CRT ones: those ignore the frozen clock and order the
# presigned-URL query differently. The reference is the pure-Python signer.
os.environ["BOTO_DISABLE_CRT"] = "true"

import botocore
import botocore.auth
import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


# ---------------------------------------------------------------- random inputs
def rand_now(rng):
    start = datetime.datetime(2015, 1, 1)
    return start + datetime.timedelta(seconds=rng.randrange(0, 20 * 365 * 86400))


def rand_credentials(rng):
    ak = "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    sk = "".join(rng.choice(B64) for _ in range(40))
    token = None
    if rng.random() < 0.4:
        body = "".join(rng.choice(B64) for _ in range(rng.randrange(20, 160)))
        # make sure the awkward characters are really there
        chars = list(body)
        for c in "/+":
            chars.insert(rng.randrange(len(chars) + 1), c)
        token = "IQoJb3JpZ2luX2Vj" + "".join(chars) + "=" * rng.randrange(1, 3)
    return ak, sk, token


def rand_bucket(rng):
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    n = rng.randrange(3, 21)
    out = [rng.choice("abcdefghijklmnopqrstuvwxyz")]
    while len(out) < n - 1:
        # hyphens allowed inside, never two in a row (avoids xn--, --x-s3 ...)
        if out[-1] != "-" and rng.random() < 0.15:
            out.append("-")
        else:
            out.append(rng.choice(alnum))
    out.append(rng.choice(alnum))
    return "".join(out[:n])


KEY_PIECES = [
    "photos", "file.txt", "data-2024_01", "x", "A1", "README", "report final",
    "a b", " ", "ü", "日本", "😀", "é", "Ω", "~", "+", "=", "&", "?", "#", "%",
    "%41", "!", "'", "(", ")", "*", ",", ";", ":", "@", "$", "[", "]", "-",
    "_", ".", "1+1=2", "q?x=1&y=2", "50%", "a~b", "user@host",
]


def rand_key(rng):
    segs = []
    for _ in range(rng.randrange(1, 5)):
        r = rng.random()
        if r < 0.08:
            segs.append("")           # -> consecutive slashes
        elif r < 0.14:
            segs.append(".")
        elif r < 0.20:
            segs.append("..")
        elif r < 0.45:
            segs.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randrange(1, 9))))
        else:
            segs.append("".join(rng.choice(KEY_PIECES) for _ in range(rng.randrange(1, 4))))
    key = "/".join(segs)
    if rng.random() < 0.1:
        key += "/"
    key = key.lstrip("/")  # no leading slash
    if not key.strip("/"):
        key = "k" + key
    return key


def s3_key_path(key):
    # S3 style: every byte except unreserved and "/" as %XX (uppercase)
    return quote(key, safe="/~")


def spaced(rng, words):
    """Join words with runs of spaces; sometimes pad with leading/trailing spaces."""
    out = ""
    for i, w in enumerate(words):
        if i:
            out += " " * rng.choice([1, 1, 1, 2, 3, 5])
        out += w
    if rng.random() < 0.3:
        out = " " * rng.randrange(1, 4) + out
    if rng.random() < 0.3:
        out = out + " " * rng.randrange(1, 4)
    return out


HDR_WORDS = ["value", "a", "b", "hello", "world", "x=1,y=2", "max-age=0,", "no-cache",
             '"quoted', 'value"', "semi;colon", "token/with/slash", "1234", "UPPER", "MiXeD"]
CUSTOM_NAMES = ["X-Foo", "x-foo-bar", "X-Custom-Header", "X-Request-Id", "x-MIXED-Case",
                "Accept", "Cache-Control", "X-Api-Key", "x-trace-tag", "X-Amz-Meta-Note"]


def rand_header_value(rng):
    r = rng.random()
    if r < 0.03:
        return ""
    if r < 0.05:
        return " " * rng.randrange(1, 4)
    return spaced(rng, [rng.choice(HDR_WORDS) for _ in range(rng.randrange(1, 5))])


def add_header(headers, name, value):
    if name.lower() in [h.lower() for h in headers]:
        return
    headers[name] = value


def add_custom_headers(rng, headers, allow_unsigned, extra_names=()):
    names = CUSTOM_NAMES + list(extra_names)
    for _ in range(rng.randrange(0, 4)):
        add_header(headers, rng.choice(names), rand_header_value(rng))
    if allow_unsigned and rng.random() < 0.1:
        add_header(headers, "X-Amzn-Trace-Id", "Root=1-%08x-%024x" % (rng.getrandbits(32), rng.getrandbits(96)))


BODY_PIECES = ["hello", " ", "ü", "日本語", "😀", "{}", '{"a": 1}', "\n", "\t", "Action=SendMessage",
               "&MessageBody=hi%20there", "x" * 10, "\r\n", "€", "∑"]


def rand_body(rng, allow_empty=True):
    if allow_empty and rng.random() < 0.35:
        return ""
    return "".join(rng.choice(BODY_PIECES) for _ in range(rng.randrange(1, 8)))


PATH_SEGS = [
    "dev", "prod", "v1", "items", "@connections", "abc%3D", "a%2Fb", "~user", "a-b_c.d",
    "hello%20world", quote("日本"), quote("ü"), quote("😀"), "%41%42", "x%25y", "", ".", "..",
    "foo=bar", "a+b", "a:b", "it's", "(x)", "*", "a,b", "a;b", "$x", "!", "A", "123",
    "Segment", "%7E",
]

QUERY_KEYS = ["Action", "Version", "a", "A", "b", "key", "Param1", "param", "x-id", "a-b",
              "a.b", "a_b", "a~b", "aa", "a%20b", "%E2%9C%93", "Z"]
QUERY_VALUES = ["", "1", "2", "10", "SendMessage", "2012-11-05", "a%2Fb", "hello%20world",
                "%E2%9C%93", "x~y", "a%2Bb", "%3D", "%26", "abc", "A", "a", "-_.~", "%25"]


def rand_path(rng, nmin=0):
    n = rng.randrange(nmin, 5)
    if n == 0:
        return rng.choice(["", "/", "/"])
    path = "/" + "/".join(rng.choice(PATH_SEGS) for _ in range(n))
    if rng.random() < 0.2:
        path += "/"
    return path


def rand_query(rng):
    if rng.random() < 0.4:
        return ""
    parts = []
    for _ in range(rng.randrange(1, 6)):
        if parts and rng.random() < 0.25:
            k = parts[rng.randrange(len(parts))].partition("=")[0]  # repeated key
        else:
            k = rng.choice(QUERY_KEYS)
        r = rng.random()
        if r < 0.1:
            parts.append(k)  # key without "="
        else:
            parts.append(k + "=" + rng.choice(QUERY_VALUES))
    return "?" + "&".join(parts)


def rand_origin(rng, service, region):
    hosts = {
        "sqs": "sqs.%s.amazonaws.com" % region,
        "dynamodb": "dynamodb.%s.amazonaws.com" % region,
        "execute-api": "%s.execute-api.%s.amazonaws.com" % (
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10)), region),
        "s3": rng.choice(["s3.amazonaws.com", "s3.%s.amazonaws.com" % region]),
    }
    r = rng.random()
    if r < 0.15:
        return "https://%s:443" % hosts[service]          # default port, stripped by botocore
    if r < 0.22:
        return "http://%s:80" % rng.choice(["localhost", "127.0.0.1", hosts[service]])
    if r < 0.40:
        return "http://%s" % rng.choice(["localhost:4566", "127.0.0.1:4566", "localhost:9000", "127.0.0.1:8080"])
    if r < 0.47:
        return "https://%s:4566" % hosts[service]
    return "https://%s" % hosts[service]


# ---------------------------------------------------------------- botocore calls
def fmt(dt):
    return dt.strftime("%Y%m%dT%H%M%SZ")


def frozen(dt):
    return mock.patch("botocore.auth.get_current_datetime", return_value=dt)


def hmac_sig(secret, now, region, service, sts):
    def h(k, m):
        return hmac.new(k, m.encode("utf-8"), hashlib.sha256).digest()
    k = h(("AWS4" + secret).encode("utf-8"), now[:8])
    k = h(h(h(k, region), service), "aws4_request")
    return hmac.new(k, sts.encode("utf-8"), hashlib.sha256).hexdigest()


def header_sign(auth_cls, service, region, method, url, headers, body, creds, dt, context=None):
    """Sign with auth_cls.add_auth, capturing the canonical request and string to sign it used."""
    ak, sk, token = creds
    req = AWSRequest(method=method, url=url, headers=dict(headers), data=body.encode("utf-8"))
    if context:
        req.context.update(context)
    auth = auth_cls(Credentials(ak, sk, token), service, region)
    captured = {}
    orig_cr, orig_sts = auth.canonical_request, auth.string_to_sign

    def canonical_request(request):
        captured["cr"] = orig_cr(request)
        return captured["cr"]

    def string_to_sign(request, cr):
        captured["sts"] = orig_sts(request, cr)
        return captured["sts"]

    auth.canonical_request = canonical_request
    auth.string_to_sign = string_to_sign
    before = [n.lower() for n in headers]
    with frozen(dt):
        auth.add_auth(req)
    added = {}
    for name, value in req.headers.items():
        if name.lower() not in before:
            added[name] = value
        elif value != headers[[n for n in headers if n.lower() == name.lower()][0]]:
            raise RuntimeError("botocore changed input header %r" % name)
    # sanity: the signature really is HMAC(signing key, captured string to sign)
    sig = added["Authorization"].rsplit("Signature=", 1)[1]
    if sig != hmac_sig(sk, fmt(dt), region, service, captured["sts"]):
        raise RuntimeError("captured string to sign does not match signature")
    return captured["cr"], captured["sts"], added


_SESSION = None
if botocore.auth.AUTH_TYPE_MAPS["s3v4-query"] is not botocore.auth.S3SigV4QueryAuth:
    sys.exit("botocore_oracle: botocore is using CRT signers despite BOTO_DISABLE_CRT")


def session():
    global _SESSION
    if _SESSION is None:
        _SESSION = botocore.session.get_session()
    return _SESSION


def gen_presign(rng, opts):
    method = rng.choice(["GET", "PUT"])
    bucket, key = rand_bucket(rng), rand_key(rng)
    expires = rng.choice([1, 60, 900, 3600, 86400, 604800, rng.randrange(1, 604801)])
    region = rng.choice(REGIONS)
    endpoint_url = rng.choice([None, None, "http://127.0.0.1:4566", "http://localhost:9000"])
    addressing_style = "path" if endpoint_url else rng.choice(["virtual", "path"])
    content_type = None
    if method == "PUT" and rng.random() < 0.5:
        content_type = rng.choice(["image/png", "application/octet-stream", "text/plain; charset=utf-8", "application/json"])
    ak, sk, token = rand_credentials(rng)
    dt = rand_now(rng)
    client = session().create_client(
        "s3", region_name=region, endpoint_url=endpoint_url,
        aws_access_key_id=ak, aws_secret_access_key=sk, aws_session_token=token,
        config=Config(signature_version="s3v4", s3={"addressing_style": addressing_style}))
    params = {"Bucket": bucket, "Key": key}
    if content_type is not None:
        params["ContentType"] = content_type
    with frozen(dt):
        url = client.generate_presigned_url(
            "get_object" if method == "GET" else "put_object", Params=params, ExpiresIn=expires)
    return {
        "kind": "presign", "method": method, "bucket": bucket, "key": key, "expires": expires,
        "region": region, "endpoint_url": endpoint_url, "addressing_style": addressing_style,
        "content_type": content_type, "access_key": ak, "secret_key": sk, "session_token": token,
        "now": fmt(dt), "expected_url": url,
    }


SERVICE_HEADERS = {
    "sqs": lambda rng: {"Content-Type": rng.choice(["application/x-www-form-urlencoded; charset=utf-8",
                                                     "application/x-amz-json-1.0"])},
    "dynamodb": lambda rng: {"Content-Type": "application/x-amz-json-1.0",
                             "X-Amz-Target": "DynamoDB_20120810." + rng.choice(["GetItem", "PutItem", "Query"])},
    "execute-api": lambda rng: {"Content-Type": rng.choice(["application/json", "text/plain"])},
}


def gen_sign(rng, opts):
    service = rng.choice(["sqs", "dynamodb", "execute-api"])
    region = rng.choice(REGIONS)
    method = rng.choice(["GET", "POST"])
    url = rand_origin(rng, service, region) + rand_path(rng) + rand_query(rng)
    headers = {}
    if rng.random() < 0.7:
        for k, v in SERVICE_HEADERS[service](rng).items():
            add_header(headers, rng.choice([k, k.lower(), k.upper()]) if rng.random() < 0.3 else k, v)
    add_custom_headers(rng, headers, opts.unsigned_headers)
    body = rand_body(rng, allow_empty=True) if method == "POST" else (rand_body(rng) if rng.random() < 0.15 else "")
    creds = rand_credentials(rng)
    dt = rand_now(rng)
    cr, sts, added = header_sign(botocore.auth.SigV4Auth, service, region, method, url, headers, body, creds, dt)
    return {
        "kind": "sign", "service": service, "method": method, "url": url, "headers": headers,
        "body": body, "region": region, "access_key": creds[0], "secret_key": creds[1],
        "session_token": creds[2], "now": fmt(dt), "expected_canonical_request": cr,
        "expected_string_to_sign": sts, "expected_headers": added,
    }


S3_QUERIES = ["", "", "", "?uploads", "?tagging", "?acl=", "?versionId=3%2FL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY",
              "?partNumber=2&uploadId=VXBsb2FkIElE", "?list-type=2&prefix=a%2Fb&delimiter=%2F",
              "?response-content-type=text%2Fplain&response-content-disposition=attachment%3B%20filename%3D%22x.txt%22",
              "?x-id=GetObject", "?a=2&a=1&a="]
S3_EXTRA_HEADERS = ["x-amz-meta-author", "X-Amz-Meta-Color", "x-amz-storage-class", "Content-Type",
                    "If-None-Match", "Range", "Content-Disposition"]


def gen_sign_s3(rng, opts):
    region = rng.choice(REGIONS)
    method = rng.choice(["GET", "PUT", "HEAD", "DELETE"])
    bucket, key = rand_bucket(rng), rand_key(rng)
    url = rand_origin(rng, "s3", region) + "/" + bucket + "/" + s3_key_path(key) + rng.choice(S3_QUERIES)
    headers = {}
    add_custom_headers(rng, headers, opts.unsigned_headers, S3_EXTRA_HEADERS * 2)
    if opts.unsigned_headers and method == "PUT" and rng.random() < 0.1:
        add_header(headers, "Expect", "100-continue")
    body = rand_body(rng) if method == "PUT" else ""
    creds = rand_credentials(rng)
    dt = rand_now(rng)
    context = None
    if rng.random() < 0.25:
        # what an S3 client configured with payload_signing_enabled=False does
        context = {"client_config": Config(s3={"payload_signing_enabled": False})}
    cr, sts, added = header_sign(botocore.auth.S3SigV4Auth, "s3", region, method, url, headers, body, creds, dt, context)
    payload_hash = cr.rsplit("\n", 1)[1]
    return {
        "kind": "sign-s3", "service": "s3", "method": method, "url": url, "headers": headers,
        "body": body, "region": region, "access_key": creds[0], "secret_key": creds[1],
        "session_token": creds[2], "now": fmt(dt), "payload_hash": payload_hash,
        "expected_canonical_request": cr, "expected_string_to_sign": sts, "expected_headers": added,
    }


GENERATORS = [gen_presign, gen_sign, gen_sign_s3]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--no-unsigned-headers", dest="unsigned_headers", action="store_false",
                    help="never put headers botocore leaves unsigned (X-Amzn-Trace-Id, Expect) in the inputs")
    opts = ap.parse_args()
    rng = random.Random(opts.seed)
    cases = []
    for i in range(opts.count):
        gen = GENERATORS[i % len(GENERATORS)]
        for _attempt in range(50):
            try:
                cases.append(gen(rng, opts))
                break
            except Exception as exc:  # botocore rejected the input: draw another one
                print("botocore_oracle: skipped %s input: %r" % (gen.__name__, exc), file=sys.stderr)
        else:
            sys.exit("botocore_oracle: %s kept failing" % gen.__name__)
    json.dump({"botocore": botocore.__version__, "cases": cases}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
