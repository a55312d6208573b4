"""The pipeline's Redis clients: one per URL per process, with short timeouts, for the
ingest rate limit, the request log, worker heartbeats, rate limits and circuit breakers.
Redis is never waited on for long. It imports no app code, so any module may use it."""

from __future__ import annotations

from functools import cache

import redis


@cache
def redis_client(url: str) -> redis.Redis:
    """One client per URL per process, short timeouts: Redis is never waited on for long."""
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
