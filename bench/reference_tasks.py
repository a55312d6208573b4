"""The references the worker benchmarks compare against: bare Celery tasks, no pipeline.

Loaded into the benchmark's worker with ``celery worker --include bench.reference_tasks``.

``bench.bare_agent_call`` makes the same Messages API call as the benchmark's agent
(``test.waiting_agent``: same SDK client, model, system prompt and max_tokens, against the
same stub) and nothing else: no event, no claim, no attempt, no step, no result row. It counts
itself done with one Redis INCR, the cheapest way for the benchmark to see it finish.

``bench.bare_stamp`` is the dispatch-latency reference: it records when it started.
"""

from __future__ import annotations

import time
from functools import cache

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
