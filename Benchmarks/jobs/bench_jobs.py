#!/usr/bin/env python3
"""The jobs pipeline's own cost on `martlet local`: WebSocket submit → function → queue → worker →
@connections push, with the no-op model so that everything measured is pipeline.

Usage: python Benchmarks/jobs/bench_jobs.py --ws ws://127.0.0.1:PORT --key KEY [--jobs N] [--connections C]

Prints, for sequential jobs, submit → accepted, submit → first progress and submit → result p50/p99
(the model takes ~0 ms, so submit → result is the overhead); then jobs per second with C connections
each submitting its share of N jobs at once and waiting for every result.
"""
import argparse
import asyncio
import json
import statistics
import time

import websockets


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


async def one_job(ws, index):
    started = time.perf_counter()
    await ws.send(json.dumps({"action": "submit", "model": "noop", "parameters": {"i": index}}))
    accepted = first_progress = None
    job_id = None
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        now = time.perf_counter()
        if message["type"] == "accepted" and accepted is None:
            accepted, job_id = now, message["jobId"]
        elif message["type"] == "progress" and first_progress is None and message.get("jobId") == job_id:
            first_progress = now
        elif message["type"] == "result" and message.get("jobId") == job_id:
            return accepted - started, (first_progress or now) - started, now - started
        elif message["type"] in ("error", "failed"):
            raise RuntimeError(message)


async def latency(url, count):
    async with websockets.connect(url) as ws:
        for i in range(3):  # warm every function and the worker
            await one_job(ws, -i)
        samples = [await one_job(ws, i) for i in range(count)]
    for name, index in (("submit → accepted", 0), ("submit → first progress", 1), ("submit → result (overhead)", 2)):
        values = [s[index] * 1000 for s in samples]
        print(f"  {name:32s} p50 {statistics.median(values):7.1f} ms   p99 {percentile(values, 99):7.1f} ms")


async def throughput(url, total, connections):
    async def client(share):
        async with websockets.connect(url, max_queue=None) as ws:
            for i in range(share):
                await ws.send(json.dumps({"action": "submit", "model": "noop", "parameters": {"i": i}}))
            results = 0
            while results < share:
                message = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if message["type"] == "result":
                    results += 1
                elif message["type"] in ("error", "failed"):
                    raise RuntimeError(message)
    share = total // connections
    started = time.perf_counter()
    await asyncio.gather(*(client(share) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    print(f"  {share * connections} no-op jobs over {connections} connections: {share * connections / elapsed:.0f} jobs/s ({elapsed:.1f} s)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ws", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    url = f"{args.ws}/?key={args.key}"
    print("sequential jobs (no-op model):")
    asyncio.run(latency(url, args.samples))
    print("throughput:")
    asyncio.run(throughput(url, args.jobs, args.connections))


if __name__ == "__main__":
    main()
