"""An opt-in per-source rate limit for webhooks (off unless a source or the setting asks).

Off by default because a refused webhook may be a lost one: GitHub does not redeliver a
delivery that failed, so a 429 there drops the event for good. Ingest absorbs load by storing
the event (one short transaction); pressure on handlers is managed at delivery (a route's
queue and concurrency), not by turning senders away. A source whose sender does retry on 429
(and which an operator wants to cap) sets ``rate_limit_per_minute`` in its settings.

A fixed one-minute window counted in Redis (INCR + EXPIRE), shared by every web process. Only
requests that passed signature verification count: forged ones cost a hash and nothing else,
and must not use up a genuine sender's budget. If Redis cannot be reached the limit is not
applied (fail open): refusing every webhook because the limiter is down would lose more than
it protects.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import redis
from django.conf import settings

from events import conf

from .redis_clients import redis_client
from .webhooks.base import Rejection

log = logging.getLogger("switchyard.ingest")

WINDOW_SECONDS = 60


class RateLimited(Rejection):
    def __init__(self, slug: str, limit: int, retry_after: int) -> None:
        super().__init__(429, f"source {slug!r} is over its limit of {limit} requests a minute")
        self.retry_after = retry_after


def limit_for(source_settings: Any) -> int:
    """Requests a minute for a source: its ``rate_limit_per_minute`` setting, else
    SWITCHYARD_HOOK_RATE_LIMIT (0 by default). 0 means no limit."""
    if isinstance(source_settings, dict):
        value = source_settings.get("rate_limit_per_minute")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return int(conf.HOOK_RATE_LIMIT.get())


def check(slug: str, limit: int, *, now: float | None = None) -> None:
    """Count one request for ``slug``; raise RateLimited once the window's count passes limit."""
    if limit <= 0:
        return
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    key = f"switchyard:ratelimit:{slug}:{window}"
    try:
        pipe = redis_client(settings.REDIS_URL).pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS * 2)
        count = int(pipe.execute()[0])
    except (redis.RedisError, OSError) as exc:
        log.warning("rate limit not applied to %r: Redis unreachable (%s)", slug, exc)
        return
    if count > limit:
        retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
        raise RateLimited(slug, limit, retry_after)


class TooManyFailures(Rejection):
    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "too many failed authentications from this address; wait and retry")
        self.retry_after = retry_after


def client_address(meta: dict[str, Any]) -> str:
    """The client's address: ``SWITCHYARD_CLIENT_IP_HEADER`` (set it to the header a trusted
    reverse proxy writes, such as X-Real-IP) if set and present, else the socket's peer."""
    header = conf.CLIENT_IP_HEADER.get()
    if header:
        value = str(meta.get("HTTP_" + header.upper().replace("-", "_"), "")).strip()
        if value:
            return value.split(",")[0].strip()[:64]
    return str(meta.get("REMOTE_ADDR", ""))[:64]


def _failures_key(address: str, now: float) -> tuple[str, int]:
    window = int(now // WINDOW_SECONDS)
    return f"switchyard:authfail:{address}:{window}", window


def check_failures(address: str, *, now: float | None = None) -> None:
    """Raise TooManyFailures while ``address`` is over SWITCHYARD_API_AUTH_FAILURES_PER_MINUTE
    failed authentications in this minute: then even a right token is refused, so guessing
    stops paying. Fails open if Redis is down, like the webhook limit."""
    limit = int(conf.API_AUTH_FAILURES_PER_MINUTE.get())
    if limit <= 0:
        return
    now = time.time() if now is None else now
    key, window = _failures_key(address, now)
    try:
        count = int(redis_client(settings.REDIS_URL).get(key) or 0)
    except (redis.RedisError, OSError) as exc:
        log.warning("authentication throttle not applied: Redis unreachable (%s)", exc)
        return
    if count >= limit:
        raise TooManyFailures(max(1, math.ceil((window + 1) * WINDOW_SECONDS - now)))


def count_failure(address: str, *, now: float | None = None) -> None:
    """Count one failed authentication from ``address``."""
    if int(conf.API_AUTH_FAILURES_PER_MINUTE.get()) <= 0:
        return
    key, _ = _failures_key(address, time.time() if now is None else now)
    try:
        pipe = redis_client(settings.REDIS_URL).pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS * 2)
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("failed authentication not counted: Redis unreachable (%s)", exc)
