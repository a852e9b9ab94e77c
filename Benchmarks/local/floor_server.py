#!/usr/bin/env python3
"""The floor for scripts/bench-local: what a bare server does with no function in the path — the
Python `websockets` server echoing each message, and an asyncio HTTP/1.1 server answering
`GET /hello` with keep-alive. serverless-offline (the peer that emulates WebSocket APIs) comes from
npm, which this machine cannot reach; this floor is measured in the same run instead, so the
figures read as "how close the full gateway → function → @connections path comes to no work at all".

Usage: python Benchmarks/local/floor_server.py --ws-port P --http-port Q   (prints "floor ready")
"""
import argparse
import asyncio
import resource

import websockets

BODY = b'{"message":"hello"}'
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


class HelloProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(RESPONSE)


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ws-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    http = await loop.create_server(HelloProtocol, "127.0.0.1", args.http_port, backlog=1024)
    async with websockets.serve(echo, "127.0.0.1", args.ws_port, ping_interval=None, backlog=1024, max_queue=4):
        print("floor ready", flush=True)
        async with http:
            await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
