#!/usr/bin/env python3
"""The cost of metrics on the hot path: warm invocations per second of the `echo` function through
`martlet serve-function` (release bootstrap) with the runtime's EMF metrics on (the default) and off
(`MARTLET_METRICS=off`), in the same run, alternating rounds so drift hits both alike.

Usage: python Benchmarks/metrics/bench_metrics.py --martlet PATH [--rounds N] [--seconds S]
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time


def start(martlet, metrics_on):
    log = tempfile.NamedTemporaryFile("w+", delete=False)
    args = [martlet, "serve-function", "echo", "--configuration", "release", "--no-build", "--port", "0"]
    if not metrics_on:
        args += ["--env", "MARTLET_METRICS=off"]
    process = subprocess.Popen(args, stdout=log, stderr=log)
    deadline = time.time() + 20
    while time.time() < deadline:
        match = re.search(r"Invoke API for '.*' at http://127\.0\.0\.1:(\d+)", open(log.name).read())
        if match:
            return process, int(match.group(1)), log.name
        time.sleep(0.05)
    raise SystemExit("serve-function did not start")


def rate(port, seconds):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write('wrk.method = "POST"\nwrk.body = \'{"x":1}\'\n')
    script.close()
    out = subprocess.run(["wrk", "-t1", "-c1", f"-d{seconds}s", "-s", script.name, f"http://127.0.0.1:{port}/2015-03-31/functions/echo/invocations"],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--martlet", required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    results = {True: [], False: []}
    for _ in range(args.rounds):
        for metrics_on in (True, False):
            process, port, log = start(args.martlet, metrics_on)
            try:
                rate(port, 1)  # warm
                results[metrics_on].append(rate(port, args.seconds))
            finally:
                process.terminate()
                process.wait(10)
                emf = sum(1 for line in open(log) if '"_aws"' in line)
                os.unlink(log)
            if metrics_on and emf == 0:
                print("warning: no EMF lines were written with metrics on")
    on, off = statistics.median(results[True]), statistics.median(results[False])
    print(f"warm echo invocations/s, median of {args.rounds} rounds of {args.seconds} s (wrk -c1):")
    print(f"  metrics on  {on:8.0f}/s   {[round(x) for x in results[True]]}")
    print(f"  metrics off {off:8.0f}/s   {[round(x) for x in results[False]]}")
    print(f"  cost of metrics: {100 * (off - on) / off:+.1f} % (goal: under 5 %)")


if __name__ == "__main__":
    main()
