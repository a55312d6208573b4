"""Who is alive: each Celery worker says so in Redis every few seconds, with the queues it
consumes, and beat's lock shows a beat is sending (events/schedules/lock.py). ``/readyz``
(events/views/health.py) reads both.

A worker's heartbeat is a key ``switchyard:worker:<hostname>`` holding its queues, written by
one thread of the worker's main process every ``BEAT_SECONDS`` and expiring after
``TTL_SECONDS``: a worker that dies, or is cut off from Redis, disappears within the TTL.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import redis
from django.conf import settings

from .ratelimit import redis_client

log = logging.getLogger("switchyard.pipeline")

PREFIX = "switchyard:worker:"
BEAT_SECONDS = 5.0
TTL_SECONDS = 20


def client() -> redis.Redis:
    return redis_client(str(settings.REDIS_URL))


def start_heartbeat(hostname: str, queues: list[str]) -> threading.Thread:
    """Say every few seconds, until the process exits, that ``hostname`` consumes ``queues``."""
    key = PREFIX + hostname
    value = json.dumps({"queues": sorted(queues)})

    def beat() -> None:
        conn = client()
        while True:
            try:
                conn.set(key, value, ex=TTL_SECONDS)
            except (redis.RedisError, OSError) as exc:
                log.warning("worker heartbeat not written: %s", exc)
            time.sleep(BEAT_SECONDS)

    thread = threading.Thread(target=beat, name="switchyard-heartbeat", daemon=True)
    thread.start()
    return thread


def live_workers(conn: redis.Redis | None = None) -> dict[str, list[str]]:
    """Hostname -> queues of every worker whose heartbeat has not expired."""
    conn = conn or client()
    workers: dict[str, list[str]] = {}
    for key in conn.scan_iter(match=PREFIX + "*", count=100):
        raw = conn.get(key)
        if raw is None:
            continue
        name = (key.decode() if isinstance(key, bytes) else str(key)).removeprefix(PREFIX)
        workers[name] = list(json.loads(raw).get("queues", []))
    return workers


def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """Celery's ``worker_ready``: start the heartbeat with the queues this worker consumes."""
    consumer = sender
    queues = [queue.name for queue in consumer.task_consumer.queues]
    start_heartbeat(consumer.hostname, queues)
