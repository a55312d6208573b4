"""Who is alive: each Celery worker says so in Redis every few seconds, with the queues it
consumes, and beat's lock shows a beat is sending (events/schedules/lock.py). ``/readyz``
(events/views/health.py) and the admin's dashboard (events.dashboard) read both through
``workers_check`` and ``beat_check``.

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
from celery import current_app
from django.conf import settings

from . import conf
from .models import Route
from .redis_clients import redis_client
from .schedules.lock import lock_for

log = logging.getLogger("switchyard.pipeline")

PREFIX = "switchyard:worker:"
BEAT_SECONDS = 5.0
TTL_SECONDS = 20

# {"ok": bool, "detail": str}: what /readyz answers for each check.
Check = dict[str, Any]


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


def wanted_queues() -> set[str]:
    """The queues some worker must consume: every enabled route's and the sweeper's."""
    wanted = set(Route.objects.filter(enabled=True).values_list("queue", flat=True))
    wanted.add(str(conf.MAINTENANCE_QUEUE.get()))
    return wanted


def workers_check(workers: dict[str, list[str]] | None = None) -> Check:
    """Does a live worker consume every queue a route sends to? ``workers``: the heartbeats
    already read (``live_workers``), else they are read here."""
    wanted = wanted_queues()
    if workers is None:
        try:
            workers = live_workers()
        except (redis.RedisError, OSError) as exc:
            return heartbeats_unreadable(exc)
    consumed = {queue for queues in workers.values() for queue in queues}
    missing = sorted(wanted - consumed)
    if missing:
        return _failed(f"no live worker consumes {', '.join(missing)}")
    return _ok(f"{len(workers)} worker(s) consume {', '.join(sorted(wanted))}")


def heartbeats_unreadable(exc: Exception) -> Check:
    return _failed(f"worker heartbeats unreadable ({type(exc).__name__})")


def beat_check() -> Check:
    """Does a beat hold the schedule lock (so schedules and the sweeper are sent)?"""
    lock = lock_for(current_app.conf.broker_url or "", ttl=1.0, redis_url=str(settings.REDIS_URL))
    if lock is None:
        return _ok("not checked: the broker is neither Redis nor RabbitMQ (a single beat)")
    try:
        held = bool(lock.client.exists(lock.key))
    except (redis.RedisError, OSError) as exc:
        return _failed(f"the schedule lock is unreadable ({type(exc).__name__})")
    return _ok("a beat holds the schedule lock") if held else _failed("no beat holds the lock")


def _ok(detail: str) -> Check:
    return {"ok": True, "detail": detail}


def _failed(detail: str) -> Check:
    return {"ok": False, "detail": detail}
