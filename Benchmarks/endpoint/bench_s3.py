"""S3 throughput of two AWS-compatible endpoints (ours and moto), measured the same way.

Usage: bench_s3.py --ours URL --moto URL [--seconds S] [--big-mib N] [--data DIR]

1. PUT + GET pairs per second for 1 KiB and 1 MiB objects, one keep-alive connection
   (http.client), requests signed here with SigV4 (UNSIGNED-PAYLOAD, signing key cached): the
   client's own cost stays small, and it is measured as this thread's CPU time per round trip
   (signing, HTTP framing and parsing, socket calls), so "server" = wall time - client CPU.
   Then 1 KiB pairs from --clients processes at once (default 2), each on its own connection:
   the endpoint's throughput when more than one client uses it, as a stack's functions and
   workers do.
2. MB/s for one N MiB object (default 256): a streamed single PUT and GET (http.client, 1 MiB
   writes/reads), and a boto3 multipart upload / ranged download (TransferConfig 16 MiB parts,
   4 threads).
3. dd's write throughput (bs=1M, conv=fdatasync) of the disk holding --data (ours' data folder),
   the bound for any disk-backed PUT figure; and MD5's speed on one core, the bound for any single
   PUT (the ETag is the body's MD5).
Prints a table with ours, moto and ours/moto, and the command line.
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import io
import multiprocessing
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "test", "test"
KIB, MIB = 1024, 1024 * 1024


class Signer:
    """Minimal S3 SigV4 header signing for path-style requests (UNSIGNED-PAYLOAD)."""

    def __init__(self, host):
        self.host = host
        self._day, self._key = None, None

    def key(self, day):
        if day != self._day:
            k = ("AWS4" + SECRET_KEY).encode()
            for part in (day, REGION, "s3", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, k
        return self._key

    def headers(self, method, path, query="", extra=None):
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        headers = {"host": self.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": now}
        for name, value in (extra or {}).items():
            headers[name.lower()] = value
        names = sorted(headers)
        canonical = "\n".join([method, path, query, "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names),
                               "UNSIGNED-PAYLOAD"])
        scope = f"{now[:8]}/{REGION}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{now}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self.key(now[:8]), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
                                    f"SignedHeaders={';'.join(names)}, Signature={signature}")
        return headers


class Endpoint:
    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.url, self.address, self.port, self.netloc = url, parts.hostname, parts.port or 80, parts.netloc
        self.signer = Signer(self.netloc)
        self.connection = None
        self.opened = 0   # connections opened: a server that answers Connection: close costs one per response

    def connect(self):
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.address, self.port, timeout=120)
            self.opened += 1
        return self.connection

    def request(self, method, path, body=None, query=""):
        """One request on the keep-alive connection; returns (status, body bytes)."""
        headers = self.signer.headers(method, path, query)
        if body is not None:
            headers["content-length"] = str(len(body))
        connection = self.connect()
        connection.request(method, path + ("?" + query if query else ""), body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if response.getheader("connection", "").lower() == "close":
            self.close()
        return response.status, data

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def client(self):
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION)
        return session.client("s3", endpoint_url=self.url, config=Config(
            s3={"addressing_style": "path"}, retries={"max_attempts": 1}, max_pool_connections=8, read_timeout=300))


def pairs(endpoint, bucket, size, seconds, prefix="obj"):
    """PUT + GET round trips per second, client CPU µs per pair and connections opened per pair."""
    body = os.urandom(size)
    keys = [f"/{bucket}/{prefix}-{size}-{i}" for i in range(16)]

    def step(i):
        key = keys[i % len(keys)]
        status, _ = endpoint.request("PUT", key, body)
        if status != 200:
            raise SystemExit(f"PUT {key} on {endpoint.url}: HTTP {status}")
        status, data = endpoint.request("GET", key)
        if status != 200 or len(data) != size:
            raise SystemExit(f"GET {key} on {endpoint.url}: HTTP {status}, {len(data)} bytes")

    for i in range(20):
        step(i)
    count, cpu0, start, opened0 = 0, time.thread_time(), time.perf_counter(), endpoint.opened
    while time.perf_counter() - start < seconds:
        step(count)
        count += 1
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu0
    return count / wall, 1e6 * cpu / count, (endpoint.opened - opened0) / count


def _client_pairs(arguments):
    url, bucket, size, seconds, index = arguments
    return pairs(Endpoint(url), bucket, size, seconds, prefix=f"client{index}")[0]


def parallel_pairs(url, bucket, size, seconds, clients):
    """PUT + GET pairs per second summed over `clients` processes, each with its own connection."""
    with multiprocessing.Pool(clients) as pool:
        return sum(pool.map(_client_pairs, [(url, bucket, size, seconds, index) for index in range(clients)]))


def streamed(endpoint, bucket, data, chunk=MIB):
    """MB/s of a single streamed PUT and a streamed GET of `data`."""
    path = f"/{bucket}/big-single"
    endpoint.close()
    connection = endpoint.connect()
    headers = endpoint.signer.headers("PUT", path)
    headers["content-length"] = str(len(data))
    start = time.perf_counter()
    connection.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    view = memoryview(data)
    for offset in range(0, len(data), chunk):
        connection.send(view[offset:offset + chunk])
    response = connection.getresponse()
    response.read()
    put_seconds = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"streamed PUT on {endpoint.url}: HTTP {response.status}")
    endpoint.close()
    connection = endpoint.connect()
    start = time.perf_counter()
    connection.request("GET", path, headers=endpoint.signer.headers("GET", path))
    response = connection.getresponse()
    received = 0
    while True:
        piece = response.read(chunk)
        if not piece:
            break
        received += len(piece)
    get_seconds = time.perf_counter() - start
    endpoint.close()
    if response.status != 200 or received != len(data):
        raise SystemExit(f"streamed GET on {endpoint.url}: HTTP {response.status}, {received} bytes")
    return len(data) / MIB / put_seconds, len(data) / MIB / get_seconds


class Sink(io.RawIOBase):
    def __init__(self):
        self.size = 0

    def writable(self):
        return True

    def write(self, b):
        self.size += len(b)
        return len(b)

    def seek(self, offset, whence=0):   # the transfer manager writes ranged parts in order when not seekable
        raise io.UnsupportedOperation

    def seekable(self):
        return False


def multipart(endpoint, bucket, data):
    """MB/s of a boto3 multipart upload and ranged download (TransferConfig 16 MiB, 4 threads)."""
    s3 = endpoint.client()
    config = TransferConfig(multipart_threshold=16 * MIB, multipart_chunksize=16 * MIB, max_concurrency=4)
    start = time.perf_counter()
    s3.upload_fileobj(io.BytesIO(data), bucket, "big-multipart", Config=config)
    up = len(data) / MIB / (time.perf_counter() - start)
    sink = Sink()
    start = time.perf_counter()
    s3.download_fileobj(bucket, "big-multipart", sink, Config=config)
    down = len(data) / MIB / (time.perf_counter() - start)
    if sink.size != len(data):
        raise SystemExit(f"multipart download on {endpoint.url}: {sink.size} bytes")
    return up, down


def dd_write(folder, mib=256):
    path = os.path.join(folder, f"dd-{uuid.uuid4().hex}")
    try:
        proc = subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "conv=fdatasync"],
                              capture_output=True, text=True, timeout=300)
    finally:
        if os.path.exists(path):
            os.remove(path)
    match = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", proc.stderr)
    if not match:
        return None, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "dd failed"
    return int(match.group(1)) / MIB / float(match.group(2)), None


def measure(url, seconds, data, clients):
    endpoint = Endpoint(url)
    s3 = endpoint.client()
    bucket = "bench-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=bucket)
    out = {}
    out["1 KiB"] = pairs(endpoint, bucket, KIB, seconds)
    out["1 MiB"] = pairs(endpoint, bucket, MIB, seconds)
    out["parallel"] = parallel_pairs(url, bucket, KIB, seconds, clients)
    endpoint.close()
    out["single"] = streamed(endpoint, bucket, data)
    out["multipart"] = multipart(endpoint, bucket, data)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ours", required=True)
    parser.add_argument("--moto", required=True)
    parser.add_argument("--seconds", type=float, default=5, help="per PUT+GET measurement (default 5)")
    parser.add_argument("--big-mib", type=int, default=256, help="size of the large object (default 256)")
    parser.add_argument("--data", help="ours' data folder: dd measures its disk (default: a temporary folder)")
    parser.add_argument("--clients", type=int, default=2, help="client processes for the parallel 1 KiB pairs (default 2)")
    args = parser.parse_args()
    data = os.urandom(args.big_mib * MIB)
    ours = measure(args.ours, args.seconds, data, args.clients)
    moto = measure(args.moto, args.seconds, data, args.clients)

    print("command: " + " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable)] + sys.argv))
    print(f"{'PUT+GET pairs (keep-alive, http.client)':40} {'martlet/s':>10} {'moto/s':>10} {'ratio':>7}")
    for label in ("1 KiB", "1 MiB"):
        o, m = ours[label][0], moto[label][0]
        print(f"  {label:38} {o:10.0f} {m:10.0f} {o / m:6.1f}x")
    o, m = ours["parallel"], moto["parallel"]
    print(f"  {f'1 KiB, {args.clients} clients in parallel':38} {o:10.0f} {m:10.0f} {o / m:6.1f}x")
    print("  time per pair: wall = client CPU (signing, HTTP, sockets; this thread) + the rest (server, loopback):")
    for label in ("1 KiB", "1 MiB"):
        for name, (rate, client_us, opened) in (("martlet", ours[label]), ("moto", moto[label])):
            wall = 1e6 / rate
            print(f"    {label} {name:8} {wall:8.0f} µs = client {client_us:6.0f} µs ({100 * client_us / wall:3.0f}%) "
                  f"+ server {wall - client_us:8.0f} µs; {opened:.1f} new connections per pair")
    print(f"{f'one {args.big_mib} MiB object, MB/s (MiB/s)':40} {'martlet':>10} {'moto':>10} {'ratio':>7}")
    rows = (("streamed single PUT", ours["single"][0], moto["single"][0]),
            ("streamed GET", ours["single"][1], moto["single"][1]),
            ("boto3 multipart upload (16 MiB x4)", ours["multipart"][0], moto["multipart"][0]),
            ("boto3 ranged download (16 MiB x4)", ours["multipart"][1], moto["multipart"][1]))
    for label, o, m in rows:
        print(f"  {label:38} {o:10.0f} {m:10.0f} {o / m:6.1f}x")
    folder = args.data or tempfile.gettempdir()
    rate, error = dd_write(folder)
    where = subprocess.run(["df", "--output=source,fstype", folder], capture_output=True, text=True).stdout.split()
    disk = " ".join(where[-2:]) if len(where) >= 2 else folder
    if rate is None:
        print(f"dd write (bs=1M, conv=fdatasync) to {folder}: {error}")
    else:
        print(f"dd write (bs=1M count=256 conv=fdatasync) to {folder} ({disk}): {rate:.0f} MiB/s "
              f"- the disk bound for martlet's PUT figures (moto keeps objects in memory)")
    print(f"MD5 of one stream (hashlib, OpenSSL's assembly): {md5_rate():.0f} MiB/s - the CPU bound for any single PUT: "
          f"S3's ETag is the MD5 of the whole body, computed in order on one core")


def md5_rate(mib=256):
    """MiB/s of hashing one stream with MD5 in 1 MiB updates."""
    chunk = os.urandom(MIB)
    digest = hashlib.md5()
    start = time.perf_counter()
    for _ in range(mib):
        digest.update(chunk)
    return mib / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
