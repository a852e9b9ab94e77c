#!/usr/bin/env python3
"""Peer check of response streaming: boto3's `invoke_with_response_stream` (a real AWS client, which
parses AWS's event-stream framing and checks its CRCs) against Lambda's Invoke API as
`martlet serve-function stream` serves it, with the real bootstrap streaming.

Usage: python scripts/lib/stream_suite.py --endpoint URL
Prints `ok - NAME` / `not ok - NAME: WHY` and `N passed, M failed`; exits 1 on any failure.
"""
import argparse
import json
import sys
import time

import boto3
from botocore.config import Config

from tap import report, summary


def events(client, payload):
    started = time.perf_counter()
    response = client.invoke_with_response_stream(FunctionName="stream", Payload=json.dumps(payload))
    return response, [(time.perf_counter() - started, event) for event in response["EventStream"]]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    client = boto3.client("lambda", endpoint_url=args.endpoint, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))

    try:
        response, received = events(client, {"chunks": 3, "intervalMilliseconds": 300})
        chunks = [(t, e["PayloadChunk"]["Payload"]) for t, e in received if "PayloadChunk" in e]
        assert response["StatusCode"] == 200, response["StatusCode"]
        assert b"".join(c for _, c in chunks) == b"chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n", chunks
        assert "InvokeComplete" in received[-1][1] and not received[-1][1]["InvokeComplete"].get("ErrorCode"), received[-1]
        assert received[-1][0] - chunks[0][0] > 0.45, f"the first chunk came {received[-1][0] - chunks[0][0]:.2f} s before the end"
        report("invoke_with_response_stream: PayloadChunk events arrive as written, then InvokeComplete")
    except Exception as error:  # noqa: BLE001
        report("invoke_with_response_stream: PayloadChunk events arrive as written, then InvokeComplete", repr(error))

    try:
        _, received = events(client, {"chunks": 4, "intervalMilliseconds": 10, "failAfter": 2})
        chunks = [e["PayloadChunk"]["Payload"] for _, e in received if "PayloadChunk" in e]
        complete = received[-1][1]["InvokeComplete"]
        assert chunks == [b"chunk 1 of 4\n", b"chunk 2 of 4\n"], chunks
        assert complete.get("ErrorCode") and "failed after 2 chunks" in complete.get("ErrorDetails", ""), complete
        report("invoke_with_response_stream: an error after two chunks ends with InvokeComplete ErrorCode and ErrorDetails")
    except Exception as error:  # noqa: BLE001
        report("invoke_with_response_stream: an error after two chunks ends with InvokeComplete ErrorCode and ErrorDetails", repr(error))

    try:
        client.invoke_with_response_stream(FunctionName="missing", Payload=b"{}")
        report("invoke_with_response_stream: an unknown function is ResourceNotFoundException", "no error")
    except client.exceptions.ResourceNotFoundException:
        report("invoke_with_response_stream: an unknown function is ResourceNotFoundException")
    except Exception as error:  # noqa: BLE001
        report("invoke_with_response_stream: an unknown function is ResourceNotFoundException", repr(error))

    sys.exit(summary())


if __name__ == "__main__":
    main()
