"""The floor of a durable, verified, routed webhook ingest on this box, for `--only http`.

What no implementation of Switchyard's guarantees can skip, with nothing else: verify GitHub's
``X-Hub-Signature-256`` on the raw body, parse the JSON (the event type needs ``action``, the
partition key ``repository.full_name``), then one SQL statement, committed before the answer,
that inserts the event into Switchyard's own ``events_event`` table (unique on source + external
id: a duplicate inserts nothing and is answered 200) and its delivery for the one matching
route into ``events_delivery``, and finally LPUSH the delivery's id to Redis (the doorbell).

Left out on purpose, because they are a framework's cost rather than the guarantee's: Django's
request and ORM layers, Celery's message format, logging. The payload is stored from the raw
body text (PostgreSQL parses it into jsonb) rather than serialised again. Source and route are
read once at start-up. Served like the reference: a raw ASGI app under ``uvicorn --workers 2``
with a psycopg async pool per worker. Configured through ``BENCH_FLOOR_*`` environment
variables set by bench/http_load.py; not imported by the bench process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import redis.asyncio
from psycopg_pool import AsyncConnectionPool

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

KEY = "bench:floor"
MAX_BODY_BYTES = 1024 * 1024
PREFIX = b"sha256="

INSERT = """
WITH e AS (
    INSERT INTO events_event (id, external_id, type, schema_version, partition_key, payload,
                              received_at, status, status_changed_at, source_id, depth)
    VALUES (%(id)s, %(external_id)s, %(type)s, 1, %(partition_key)s, %(payload)s::jsonb,
            now(), 'received', now(), %(source)s, 0)
    ON CONFLICT (source_id, external_id) DO NOTHING
    RETURNING id
)
INSERT INTO events_delivery (handler, status, attempts, total_attempts, next_attempt_at,
                             enqueued_at, resends, last_error, error_class, created_at,
                             updated_at, event_id, route_id, lease_holder, resolved_by,
                             deferrals, deferred_reason, held_by)
SELECT %(handler)s, 'pending', 0, 0, now(), now(), 0, '', '', now(), now(), e.id, %(route)s,
       '', '', 0, '', ''
FROM e
RETURNING id
"""

_secret = os.environ.get("BENCH_FLOOR_SECRET", "").encode()
_state: dict[str, Any] = {}


async def _startup() -> None:
    pool = AsyncConnectionPool(
        os.environ["BENCH_FLOOR_DATABASE_URL"], min_size=4, max_size=16, open=False
    )
    await pool.open(wait=True)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM events_source WHERE slug = %s", (os.environ["BENCH_FLOOR_SLUG"],)
        )
        source = await cur.fetchone()
        cur = await conn.execute(
            "SELECT id, handler FROM events_route WHERE handler = %s AND enabled "
            "ORDER BY name LIMIT 1",
            (os.environ["BENCH_FLOOR_HANDLER"],),
        )
        route = await cur.fetchone()
    if source is None or route is None:
        raise RuntimeError("the floor receiver's source or route is missing")
    _state.update(
        pool=pool,
        source=source[0],
        route=route[0],
        handler=route[1],
        redis=redis.asyncio.Redis.from_url(os.environ["BENCH_FLOOR_REDIS_URL"]),
    )


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
                await _startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if "pool" in _state:
                    await _state["pool"].close()
                    await _state["redis"].aclose()
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
    headers = dict(scope["headers"])
    expected = PREFIX + hmac.new(_secret, body, hashlib.sha256).hexdigest().encode()
    if not _secret or not hmac.compare_digest(
        expected, headers.get(b"x-hub-signature-256", b"").lower()
    ):
        await _answer(send, 401, {"error": "signature does not match"})
        return
    delivery = headers.get(b"x-github-delivery", b"").decode("latin-1")
    event = headers.get(b"x-github-event", b"").decode("latin-1")
    try:
        text = body.decode("utf-8")
        payload = json.loads(text)
    except ValueError:
        await _answer(send, 400, {"error": "malformed JSON"})
        return
    if not delivery or not event or not isinstance(payload, dict):
        await _answer(send, 400, {"error": "not a GitHub webhook"})
        return
    action = payload.get("action")
    repository = payload.get("repository")
    params = {
        "id": uuid.uuid4(),
        "external_id": delivery,
        "type": f"github.{event}.{action}" if isinstance(action, str) else f"github.{event}",
        "partition_key": (
            repository.get("full_name") or "" if isinstance(repository, dict) else ""
        ),
        "payload": text,
        "source": _state["source"],
        "handler": _state["handler"],
        "route": _state["route"],
    }
    async with _state["pool"].connection() as conn:
        cur = await conn.execute(INSERT, params)
        row = await cur.fetchone()
    if row is None:
        await _answer(send, 200, {"duplicate": True})
        return
    await _state["redis"].lpush(KEY, str(row[0]))
    await _answer(send, 202, {"id": str(params["id"])})
