#!/usr/bin/env python3
"""Peer checks of `martlet local`: the Python `websockets` client drives the WebSocket API, boto3's
`apigatewaymanagementapi` client reaches connections through our @connections API, and plain HTTP
drives the HTTP API — all against the real bootstrap and real worker processes.

Usage: python scripts/lib/local_suite.py --http URL --ws URL --management URL --endpoint URL
           --key KEY --other-key KEY
Prints `ok - NAME` / `not ok - NAME: WHY` and `N passed, M failed`; exits 1 on any failure.
"""
import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request

import boto3
import websockets
from botocore.config import Config

from tap import report, summary


def http(method, url, key=None, body=None, headers=None):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if key:
        request.add_header("x-api-key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def is_wav(data):
    return data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def main():
    parser = argparse.ArgumentParser()
    for name in ("http", "ws", "management", "endpoint", "key", "other-key"):
        parser.add_argument("--" + name, required=True)
    args = parser.parse_args()
    aws = dict(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
               config=Config(retries={"max_attempts": 1}))
    dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint, **aws)
    stage = "prod"
    management = boto3.client("apigatewaymanagementapi", endpoint_url=f"{args.management}/{stage}", **aws)

    def connection_ids():
        return {item["connectionId"]["S"] for item in dynamodb.scan(TableName="ConnectionsTable")["Items"]}

    def wait_for(predicate, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    # --- HTTP API ---------------------------------------------------------------------------------
    def check_http():
        status, _, _ = http("POST", f"{args.http}/jobs", body={"model": "demo"})
        assert status == 401, f"no key: {status}"
        status, _, _ = http("POST", f"{args.http}/jobs", key="wrong", body={"model": "demo"})
        assert status == 403, f"wrong key: {status}"
        status, _, body = http("POST", f"{args.http}/jobs", key=args.key, body={"model": "demo", "parameters": {"prompt": "http", "seconds": 1}})
        assert status == 202, f"submit: {status} {body[:200]}"
        job_id = json.loads(body)["jobId"]
        assert wait_for(lambda: json.loads(http("GET", f"{args.http}/jobs/{job_id}", key=args.key)[2])["state"] == "SUCCEEDED", 30), "never SUCCEEDED"
        status, _, body = http("GET", f"{args.http}/jobs/{job_id}/result", key=args.key)
        assert status == 200, f"result: {status}"
        _, _, data = http("GET", json.loads(body)["url"])
        assert is_wav(data), f"not a WAV: {data[:16]!r}"
        status, _, _ = http("GET", f"{args.http}/jobs/{job_id}/result", key=args.other_key)
        assert status == 404, f"another client's result: {status}"
        status, _, body = http("GET", f"{args.http}/no/such/route")
        assert status == 404 and json.loads(body) == {"message": "Not Found"}, f"no route: {status} {body}"
        status, headers, _ = http("OPTIONS", f"{args.http}/jobs", headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"})
        lower = {k.lower(): v for k, v in headers.items()}
        assert status == 204 and "access-control-allow-origin" in lower, f"preflight: {status} {headers}"
    for name, body in [("HTTP API: 401/403 without a valid key, submit → SUCCEEDED, presigned WAV download, owner-only result, 404, CORS preflight", check_http)]:
        try:
            body()
            report(name)
        except Exception as error:
            report(name, error)

    # --- WebSocket API ----------------------------------------------------------------------------
    async def refused():
        for key, expected in (("wrong", 403), (None, 401)):
            url = args.ws + (f"/?key={key}" if key else "/")
            try:
                async with websockets.connect(url, open_timeout=10):
                    raise AssertionError(f"connected with key {key!r}")
            except websockets.exceptions.InvalidStatus as error:
                assert error.response.status_code == expected, f"key {key!r}: {error.response.status_code}"

    async def job_over_websocket():
        async with websockets.connect(f"{args.ws}/?key={args.key}") as ws:
            await ws.send(json.dumps({"action": "submit", "model": "demo", "parameters": {"prompt": "ws", "seconds": 1}, "idempotencyKey": "peer-1"}))
            progress = []
            accepted = None
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if message["type"] == "accepted":
                    accepted = message
                elif message["type"] == "progress":
                    progress.append(message["progress"])
                elif message["type"] == "result":
                    url = message["url"]
                    break
                elif message["type"] in ("failed", "error"):
                    raise AssertionError(f"job failed: {message}")
            assert accepted and accepted["duplicate"] is False, f"accepted: {accepted}"
            assert progress == sorted(progress) and progress[-1] == 100, f"progress out of order: {progress}"
            _, _, data = http("GET", url)
            assert is_wav(data), "the result is not a WAV"
            await ws.send(json.dumps({"action": "submit", "model": "demo", "parameters": {"prompt": "ws", "seconds": 1}, "idempotencyKey": "peer-1"}))
            again = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert again["type"] == "accepted" and again["duplicate"] is True and again["jobId"] == accepted["jobId"], f"resubmission: {again}"
            await ws.send("not json")
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert error["type"] == "error" and error["code"] == "InvalidRequest", f"not JSON: {error}"
            await ws.send(json.dumps({"action": "dance"}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert error["type"] == "error" and "dance" in error["message"], f"unknown action: {error}"

    async def management_api():
        before = connection_ids()
        async with websockets.connect(f"{args.ws}/?key={args.key}") as ws:
            new = connection_ids() - before
            assert len(new) == 1, f"expected one new connection record, got {new}"
            connection_id = new.pop()
            management.post_to_connection(ConnectionId=connection_id, Data=b"hello from boto3")
            assert await asyncio.wait_for(ws.recv(), 10) == "hello from boto3"
            info = management.get_connection(ConnectionId=connection_id)
            assert "ConnectedAt" in info and "Identity" in info, f"get_connection: {info}"
            management.delete_connection(ConnectionId=connection_id)
            try:
                await asyncio.wait_for(ws.recv(), 10)
                raise AssertionError("still open after delete_connection")
            except websockets.exceptions.ConnectionClosed:
                pass
        try:
            management.post_to_connection(ConnectionId=connection_id, Data=b"late")
            raise AssertionError("posted to a deleted connection")
        except management.exceptions.GoneException:
            pass
        assert wait_for(lambda: connection_id not in connection_ids()), "$disconnect did not remove the record"

    async def disconnects():
        before = connection_ids()
        ws = await websockets.connect(f"{args.ws}/?key={args.key}")
        new = (connection_ids() - before).pop()
        ws.transport.abort()  # a client that vanishes without a close frame
        await asyncio.sleep(0.2)  # let the event loop close the socket
        assert wait_for(lambda: new not in connection_ids()), "$disconnect after an abrupt close did not run"

    async def limits():
        async with websockets.connect(f"{args.ws}/?key={args.key}", max_size=None) as ws:
            await ws.send("x" * (40 * 1024))
            try:
                await asyncio.wait_for(ws.recv(), 10)
                raise AssertionError("a 40 KB frame was accepted")
            except websockets.exceptions.ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1009, f"close code {closed.rcvd}"
        async with websockets.connect(f"{args.ws}/?key={args.key}", max_size=None) as ws:
            chunks = ["y" * (30 * 1024)] * 5  # 150 KB in frames under 32 KB
            await ws.send(iter(chunks))
            try:
                await asyncio.wait_for(ws.recv(), 10)
                raise AssertionError("a 150 KB message was accepted")
            except websockets.exceptions.ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1009, f"close code {closed.rcvd}"

    for name, body in [
        ("WebSocket: $connect refuses a wrong key (403) and a missing one (401) before the upgrade", refused),
        ("WebSocket: submit → accepted, ordered progress to 100, result URL to a WAV; idempotent resubmission; errors for non-JSON and unknown actions", job_over_websocket),
        ("@connections through boto3: post reaches the client, get_connection, delete_connection closes it, then GoneException; $disconnect removes the record", management_api),
        ("WebSocket: $disconnect runs when a client vanishes without a close frame", disconnects),
        ("WebSocket: a 40 KB frame and a 150 KB message close the connection with 1009", limits),
    ]:
        try:
            asyncio.run(body())
            report(name)
        except Exception as error:
            report(name, repr(error))
    return summary()


if __name__ == "__main__":
    sys.exit(main())
