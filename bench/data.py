"""Data the benchmarks share: the source, the payloads, and a clean slate between runs.

Import only after Django is set up.
"""

from __future__ import annotations

from typing import Any

import redis
from django.apps import apps
from django.db import connection
from django.db.models import Model
from django_celery_results.models import TaskResult

from events.models import Attempt, Delivery, Event, Source
from events.routing import matching_routes

from .services import BenchError

SECRET = "bench-secret"  # noqa: S105 - a scratch database's webhook secret
# Two test handlers (test.rebook, test.notify) subscribe to it: two deliveries per event,
# both on the "default" queue, which no worker consumes during the ingest benchmarks.
INGEST_TYPE = "scenario.reservation.cancelled"
# One test handler (test.chaos) on the "chaos" queue: one delivery per event.
DELIVERY_TYPE = "test.chaos"
# One test handler (test.noop) on the "chaos" queue that does nothing: the pipeline's own cost.
NOOP_TYPE = "test.noop"


def payload(i: int) -> dict[str, Any]:
    """A small, realistic webhook payload (about 250 bytes of JSON)."""
    return {
        "reservation": f"r{i:07d}",
        "guest": {"name": "Ann Example", "email": "ann@example.com", "tier": "gold"},
        "nights": 3,
        "rooms": [{"type": "double", "rate": 129.5}, {"type": "single", "rate": 89.0}],
        "reason": "guest_request",
        "cancelled_at": "2025-01-01T12:00:00Z",
    }


def test_model(name: str) -> type[Model]:
    """A model of tests/testapp (HandlerCall, SideEffect): the rows the test handlers write."""
    return apps.get_model("testapp", name)


def bench_source() -> Source:
    source, _ = Source.objects.get_or_create(
        slug="bench",
        defaults={
            "kind": "hmac",
            "secrets": [SECRET],
            "description": "bench",
            # The HTTP benchmark sends thousands of requests a minute on purpose.
            "settings": {"rate_limit_per_minute": 0},
        },
    )
    return source


def check_routes() -> None:
    """The benchmarks assume this fan-out; say so loudly if the test handlers changed."""
    source = bench_source()
    ingest = matching_routes(INGEST_TYPE, payload(0), source=source)
    if len(ingest) != 2:
        raise BenchError(f"{INGEST_TYPE} should match 2 routes, matched {len(ingest)}")
    chaos = matching_routes(DELIVERY_TYPE, payload(0), source=source)
    if [(r.handler, r.queue) for r in chaos] != [("test.chaos", "chaos")]:
        raise BenchError(f"{DELIVERY_TYPE} should match only test.chaos on queue chaos")


def clean_slate(broker: redis.Redis, *, queues: tuple[str, ...] = ()) -> None:
    """Empty every table a run writes to, and the given queues, so each run starts equal.

    Only the queues' lists are deleted, never the whole Redis: kombu keeps its exchange
    bindings there, and a producer that has already declared a queue does not declare it
    again, so a FLUSHDB would make later messages vanish.
    """
    tables = [
        Event._meta.db_table,
        Delivery._meta.db_table,
        Attempt._meta.db_table,
        TaskResult._meta.db_table,
        test_model("HandlerCall")._meta.db_table,
        test_model("SideEffect")._meta.db_table,
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    if queues:
        broker.delete(*queues)
