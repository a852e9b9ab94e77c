#!/usr/bin/env python3
"""Runtime part 2 benchmarks, in one run (release bootstrap, `martlet serve-function`):

1. Time to first byte of a streamed response through the local Invoke API
   (`InvokeWithResponseStream`), against the same function invoked buffered (`Invoke`), which can
   only answer when the handler ends. The `stream` handler writes 5 chunks 100 ms apart.
2. Throughput of one concurrent-mode process (AWS_LAMBDA_MAX_CONCURRENCY = 1, 4, 16) against N
   single-concurrency processes, with the `sleep` handler (20 ms: an I/O-bound model call) and `echo`
   (no work: the runtime's own cost), driven by wrk with as many connections as slots.

Usage: python Benchmarks/streaming/bench_streaming.py --martlet PATH [--samples N] [--seconds S]
"""
import argparse
import concurrent.futures as futures
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


class Server:
    """`martlet serve-function` on a free port, until closed."""

    def __init__(self, martlet, function, *extra):
        self.log = tempfile.NamedTemporaryFile("w+", delete=False)
        self.process = subprocess.Popen([martlet, "serve-function", function, "--configuration", "release", "--no-build",
                                         "--port", "0", "--timeout", "30", *extra], stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            with open(self.log.name) as log:
                match = re.search(r"Invoke API for '.*' at http://127\.0\.0\.1:(\d+)", log.read())
            if match:
                self.port = int(match.group(1))
                return
            time.sleep(0.05)
        raise SystemExit(f"serve-function {function} did not start: {open(self.log.name).read()[-500:]}")

    def close(self):
        self.process.terminate()
        self.process.wait(10)
        os.unlink(self.log.name)


def first_byte_and_total(port, path, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    connection.request("POST", path, body=body)
    response = connection.getresponse()
    response.read1(1) if hasattr(response, "read1") else response.read(1)
    first = time.perf_counter() - started
    response.read()
    total = time.perf_counter() - started
    connection.close()
    return first * 1000, total * 1000


def bench_ttfb(martlet, samples):
    server = Server(martlet, "stream")
    body = json.dumps({"chunks": 5, "intervalMilliseconds": 100})
    try:
        for _ in range(3):  # warm
            first_byte_and_total(server.port, "/2021-11-15/functions/stream/response-streaming-invocations", body)
        streamed = [first_byte_and_total(server.port, "/2021-11-15/functions/stream/response-streaming-invocations", body) for _ in range(samples)]
        buffered = [first_byte_and_total(server.port, "/2015-03-31/functions/stream/invocations", body) for _ in range(samples)]
    finally:
        server.close()
    s_first = [s[0] for s in streamed]
    b_first = [b[0] for b in buffered]
    print(f"time to first byte, handler writing 5 chunks 100 ms apart ({samples} samples each):")
    print(f"  InvokeWithResponseStream  p50 {statistics.median(s_first):7.2f} ms  p99 {percentile(s_first, 99):7.2f} ms  (whole stream p50 {statistics.median([s[1] for s in streamed]):.1f} ms)")
    print(f"  Invoke (buffered)         p50 {statistics.median(b_first):7.2f} ms  p99 {percentile(b_first, 99):7.2f} ms")
    print(f"  ratio (buffered / streamed, p50): {statistics.median(b_first) / statistics.median(s_first):.1f}x sooner")


def wrk(port, function, body, connections, seconds):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n')
    script.close()
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name,
                              f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))


def bench_concurrency(martlet, seconds):
    print(f"throughput, invocations/s (wrk, {seconds} s per figure, one connection per slot):")
    for function, body in (("sleep", '{"seconds":0.02}'), ("echo", '{"x":1}')):
        for slots in (1, 4, 16):
            one = Server(martlet, function, "--max-concurrency", str(slots))
            try:
                wrk(one.port, function, body, slots, 1)  # warm
                concurrent = wrk(one.port, function, body, slots, seconds)
            finally:
                one.close()
            servers = [Server(martlet, function) for _ in range(slots)]
            try:
                for server in servers:
                    wrk(server.port, function, body, 1, 1)  # warm
                with futures.ThreadPoolExecutor(slots) as pool:
                    separate = sum(pool.map(lambda server: wrk(server.port, function, body, 1, seconds), servers))
            finally:
                for server in servers:
                    server.close()
            print(f"  {function:5s} concurrency {slots:2d}: one process {concurrent:8.0f}/s   {slots:2d} single-concurrency processes {separate:8.0f}/s   ratio {concurrent / separate:5.2f}x")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--martlet", required=True)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    bench_ttfb(args.martlet, args.samples)
    bench_concurrency(args.martlet, args.seconds)


if __name__ == "__main__":
    main()
