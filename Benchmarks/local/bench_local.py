#!/usr/bin/env python3
"""The gateway side of `martlet local` against a peer, in one run: WebSocket connections held at
once, connections opened per second, the message → function → @connections round trip, and HTTP
API requests per second through a warm function.

Usage: python Benchmarks/local/bench_local.py --name NAME --ws URL --http URL [--key KEY]
           [--message JSON] [--http-path PATH] [--connections N] [--echoes N] [--seconds S]

`--message` is what the client sends to get one answer pushed back through @connections.
Prints one line per figure; `--json FILE` also writes them for the report.
"""
import argparse
import asyncio
import json
import resource
import shutil
import statistics
import subprocess
import time

import websockets


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


async def hold_connections(url, count, parallel):
    """Opens `count` connections (at most `parallel` handshakes at a time) and keeps them open;
    returns (opened, seconds to open them all, failures, how many still answer a ping)."""
    sockets, failures = [], []
    gate = asyncio.Semaphore(parallel)

    async def open_one():
        async with gate:
            try:
                sockets.append(await websockets.connect(url, open_timeout=60, ping_interval=None, max_queue=4))
            except Exception as error:  # noqa: BLE001 - counted and reported
                failures.append(repr(error))

    started = time.perf_counter()
    await asyncio.gather(*(open_one() for _ in range(count)))
    elapsed = time.perf_counter() - started
    # All still open? Ping a sample of them.
    sample = sockets[:: max(1, len(sockets) // 200)]
    alive = 0
    for ws in sample:
        try:
            await asyncio.wait_for(await ws.ping(), 10)
            alive += 1
        except Exception:  # noqa: BLE001
            pass
    held = len(sockets)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return held, elapsed, failures, alive, len(sample)


async def echo_round_trips(url, message, count):
    async with websockets.connect(url, ping_interval=None) as ws:
        for _ in range(20):  # warm
            await ws.send(message)
            await asyncio.wait_for(ws.recv(), 30)
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            await ws.send(message)
            await asyncio.wait_for(ws.recv(), 30)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def http_rps(url, seconds, headers):
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    command = [wrk, "-t2", "-c32", f"-d{seconds}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    subprocess.run(command[:4] + ["-d2s"] + command[5:] + [url], capture_output=True, check=True)  # warm
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    rps = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    non2xx = next((int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line), 0)
    return rps, non2xx, out


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--ws", required=True)
    parser.add_argument("--http", required=True)
    parser.add_argument("--key")
    parser.add_argument("--message", default='{"action":"echo","data":"ping"}')
    parser.add_argument("--http-path", default="/hello")
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--echoes", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    ws_url = args.ws + (("&" if "?" in args.ws else "?") + f"key={args.key}" if args.key else "")
    figures = {"name": args.name}
    samples = await echo_round_trips(ws_url, args.message, args.echoes)
    figures["echo_p50_ms"] = statistics.median(samples)
    figures["echo_p99_ms"] = percentile(samples, 99)
    print(f"{args.name}: message → function → @connections round trip  p50 {figures['echo_p50_ms']:.2f} ms  p99 {figures['echo_p99_ms']:.2f} ms  ({args.echoes} sequential)")

    rps, non2xx, _ = http_rps(args.http.rstrip("/") + args.http_path, args.seconds, [f"x-api-key: {args.key}"] if args.key else [])
    figures["http_rps"] = rps
    print(f"{args.name}: HTTP API through a warm function  {rps:.0f} requests/s  (wrk -t2 -c32 {args.seconds}s; non-2xx {non2xx})")

    held, elapsed, failures, alive, sampled = await hold_connections(ws_url, args.connections, args.parallel)
    figures.update(connections_held=held, connections_failed=len(failures), connections_per_second=held / elapsed if elapsed else 0)
    print(f"{args.name}: WebSocket connections held at once  {held} of {args.connections}  ({len(failures)} failed; {alive}/{sampled} sampled answered a ping)")
    print(f"{args.name}: connections opened per second  {figures['connections_per_second']:.0f}  ({args.parallel} handshakes in parallel)")
    if failures:
        print(f"{args.name}: first failures: {failures[:3]}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out)


if __name__ == "__main__":
    asyncio.run(main())
