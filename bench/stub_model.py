"""A stand-in for the Messages API that answers every request after a fixed delay.

``python -m bench.stub_model --port N --delay 1.0`` serves ``POST /v1/messages`` on
127.0.0.1 with a short text answer (``end_turn``) after ``--delay`` seconds, the way a real
model keeps an agent waiting. It is asyncio, so hundreds of requests can wait at once at almost
no CPU cost: the benchmark measures the worker, not this server. ``GET /stats`` answers the
number of requests answered and the most seen waiting at once, as JSON.

Used by the agent benchmark (bench/agents.py) for both sides, and by tests that need a model
that is slow rather than scripted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

ANSWER = {
    "id": "msg_stub",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-5-5",
    "content": [{"type": "text", "text": "Noted: nothing to do for this event."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 120,
        "output_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    },
}
BODY = json.dumps(ANSWER).encode()
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024


class Stats:
    def __init__(self) -> None:
        self.answered = 0
        self.waiting = 0
        self.peak_waiting = 0


def _response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        f"content-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n"
        "request-id: req_stub\r\n"
        "\r\n"
    )
    return head.encode() + body


async def _serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, stats: Stats
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = [*lines[0].split(" ", 2), "", ""][:3]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            if length > MAX_BODY_BYTES:
                writer.write(_response("413 Payload Too Large", b"{}"))
                await writer.drain()
                return
            if length:
                await reader.readexactly(length)
            if method == "GET" and path == "/stats":
                body = json.dumps(
                    {"answered": stats.answered, "peak_waiting": stats.peak_waiting}
                ).encode()
                writer.write(_response("200 OK", body))
            elif method == "POST" and path.startswith("/v1/messages"):
                stats.waiting += 1
                stats.peak_waiting = max(stats.peak_waiting, stats.waiting)
                try:
                    await asyncio.sleep(delay)
                finally:
                    stats.waiting -= 1
                stats.answered += 1
                writer.write(_response("200 OK", BODY))
            else:
                writer.write(_response("404 Not Found", b'{"type":"error"}'))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def main(port: int, delay: float) -> None:
    stats = Stats()
    server = await asyncio.start_server(
        lambda r, w: _serve(r, w, delay, stats),
        "127.0.0.1",
        port,
        backlog=2048,
        limit=MAX_HEADER_BYTES,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"stub model listening on 127.0.0.1:{port}, answering after {delay} s", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.stub_model")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=1.0)
    args = parser.parse_args()
    if not 0 <= args.delay <= 60:
        sys.exit("--delay must be from 0 to 60 seconds")
    asyncio.run(main(args.port, args.delay))
