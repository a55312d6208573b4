"""The references the worker benchmarks compare against: bare Celery tasks, no pipeline.

Loaded into the benchmark's worker with ``celery worker --include bench.reference_tasks``.

``bench.bare_agent_call`` makes the same Messages API call as the benchmark's agent
(``test.waiting_agent``: same SDK client, model, system prompt and max_tokens, against the
same stub) and nothing else: no event, no claim, no attempt, no step, no result row. It counts
itself done with one Redis INCR, the cheapest way for the benchmark to see it finish.

``bench.floor_agent_call`` is the floor of a durable agent delivery: what no implementation of
Switchyard's guarantees can skip around the same SDK call, and nothing else. One statement
claims the delivery (pending to running, counting the attempt, only if still pending), the
call is made with no connection held, and one statement records the outcome and the event's
status together. Plain SQL through a psycopg pool of the worker's own (as many connections as
Switchyard's pool), no ORM, no Celery result, no trace, budget or override.

``bench.bare_stamp`` is the dispatch-latency reference: it records when it started.
"""

from __future__ import annotations

import threading
import time
from functools import cache
from typing import Any

import redis
from celery import shared_task
from django.conf import settings

DONE_KEY = "bench:bare-agent:done"
STAMP_KEY = "bench:bare-stamp"


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@shared_task(name="bench.bare_agent_call", ignore_result=True, acks_late=True)
def bare_agent_call(i: int) -> None:
    from handlers.llm.agent import get_agent
    from handlers.llm.client import get_client

    waiting_agent = get_agent("test.waiting_agent")
    if waiting_agent is None:
        raise RuntimeError("test.waiting_agent is not loaded: run the worker on tests.settings")
    get_client().messages.create(
        model=waiting_agent.resolved_model,
        max_tokens=waiting_agent.max_tokens,
        system=waiting_agent.system,
        messages=[{"role": "user", "content": f"Does event {i} need anything done?"}],
    )
    _redis().incr(DONE_KEY)


@shared_task(name="bench.bare_stamp", ignore_result=True, acks_late=True)
def bare_stamp(sent: float) -> None:
    _redis().rpush(STAMP_KEY, f"{sent}:{time.time()}")


NOOP_DONE_KEY = "bench:bare-noop:done"


@shared_task(name="bench.bare_noop", ignore_result=True, acks_late=True)
def bare_noop() -> None:
    """A no-op that stores no result: it only counts itself done (one Redis INCR)."""
    _redis().incr(NOOP_DONE_KEY)


FLOOR_CLAIM = """
UPDATE events_delivery SET status = 'running', attempts = attempts + 1,
       total_attempts = total_attempts + 1, started_at = now(), updated_at = now()
WHERE id = %s AND status = 'pending'
RETURNING event_id
"""
FLOOR_OUTCOME = """
WITH d AS (
    UPDATE events_delivery SET status = 'succeeded', finished_at = now(), updated_at = now()
    WHERE id = %s AND status = 'running'
    RETURNING event_id
)
UPDATE events_event SET status = 'processed', status_changed_at = now()
WHERE id IN (SELECT event_id FROM d)
"""


_floor_lock = threading.Lock()
_floor_pools: list[Any] = []


def _floor_pool() -> Any:
    """The worker's one pool; built under a lock, or 200 threads would build 200 at once."""
    if not _floor_pools:
        with _floor_lock:
            if not _floor_pools:
                _floor_pools.append(_new_floor_pool())
    return _floor_pools[0]


def _new_floor_pool() -> Any:
    from django.db import connection
    from psycopg_pool import ConnectionPool

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    pool_options = settings.DATABASES["default"].get("OPTIONS", {}).get("pool") or {}
    size = int(pool_options.get("max_size", 10)) if isinstance(pool_options, dict) else 10
    # Its own name, so the benchmark's count of the pipeline's connections leaves it out.
    params["application_name"] = "switchyard-bench-floor"
    pool = ConnectionPool(kwargs={**params, "autocommit": True}, min_size=size, max_size=size)
    pool.wait()
    return pool


@shared_task(name="bench.floor_agent_call", ignore_result=True, acks_late=True)
def floor_agent_call(delivery_id: int) -> None:
    from handlers.llm.agent import get_agent
    from handlers.llm.client import get_client

    waiting_agent = get_agent("test.waiting_agent")
    if waiting_agent is None:
        raise RuntimeError("test.waiting_agent is not loaded: run the worker on tests.settings")
    pool = _floor_pool()
    with pool.connection() as conn:
        if conn.execute(FLOOR_CLAIM, (delivery_id,)).fetchone() is None:
            return  # not pending: another copy of the message took it
    get_client().messages.create(
        model=waiting_agent.resolved_model,
        max_tokens=waiting_agent.max_tokens,
        system=waiting_agent.system,
        messages=[{"role": "user", "content": f"Does delivery {delivery_id} need anything?"}],
    )
    with pool.connection() as conn:
        conn.execute(FLOOR_OUTCOME, (delivery_id,))
