"""The reference webhook receiver of `python -m bench --only http`: verify, LPUSH, answer.

The baseline issue 9 compares `/hooks/<slug>` against: a receiver that checks GitHub's
``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body, as ``events.webhooks.github`` does) and
LPUSHes the body onto a Redis list. Nothing durable: no database, no dedupe on
``X-GitHub-Delivery``, no routing; a Redis restart loses what it holds. It is what a receiver
costs when it skips everything Switchyard guarantees, so it bounds what ingest could be.

A raw ASGI app rather than FastAPI: the same work with less framework under it, so the
reference is, if anything, faster than the FastAPI receiver the issue measured (a harder bar).
Served as the issue describes: ``uvicorn bench.reference_receiver:app --workers 2``. It reads
its secret and Redis URL from the environment (``BENCH_REFERENCE_SECRET``,
``BENCH_REFERENCE_REDIS_URL``); the bench starts it. Not imported by the bench process itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import redis.asyncio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

KEY = "bench:reference"
MAX_BODY_BYTES = 1024 * 1024  # Switchyard's default; refused before hashing, as there
PREFIX = b"sha256="

_secret = os.environ.get("BENCH_REFERENCE_SECRET", "").encode()
_redis_url = os.environ.get("BENCH_REFERENCE_REDIS_URL", "redis://127.0.0.1:6379/0")
# One client (with its own connection pool) per worker process, made on first use: after
# uvicorn has forked its workers and inside their event loops.
_client: redis.asyncio.Redis | None = None


def _redis() -> redis.asyncio.Redis:
    global _client
    if _client is None:
        _client = redis.asyncio.Redis.from_url(_redis_url)
    return _client


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


async def _read_body(receive: Receive) -> bytes | None:
    """The raw body, or None once it passes the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _client is not None:
                    await _client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await _answer(send, 405, {"error": "use POST"})
        return
    body = await _read_body(receive)
    if body is None:
        await _answer(send, 413, {"error": "body too large"})
        return
    given = dict(scope["headers"]).get(b"x-hub-signature-256", b"")
    expected = PREFIX + hmac.new(_secret, body, hashlib.sha256).hexdigest().encode()
    if not _secret or not hmac.compare_digest(expected, given.lower()):
        await _answer(send, 401, {"error": "signature does not match"})
        return
    await _redis().lpush(KEY, body)
    await _answer(send, 202, {"queued": True})
