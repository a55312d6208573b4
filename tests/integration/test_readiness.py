"""/readyz with real workers and a real beat: ready only when every routed queue has a live
worker, a beat holds the schedule lock and no due delivery has waited too long; otherwise 503
with the reasons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from events.liveness import PREFIX, client
from events.models import Delivery, Event, Route, Source
from events.schedules.lock import KEY as BEAT_LOCK
from tests.conftest import Beat, Worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def readiness() -> tuple[int, dict[str, Any]]:
    response = Client().get("/readyz")
    return response.status_code, response.json()


def every_routed_queue() -> str:
    queues = set(Route.objects.filter(enabled=True).values_list("queue", flat=True))
    return ",".join(sorted(queues | {settings.SWITCHYARD_MAINTENANCE_QUEUE}))


@pytest.fixture
def quiet() -> None:
    """No heartbeat or beat lock left by an earlier test's processes."""
    redis = client()
    for key in redis.scan_iter(match=PREFIX + "*"):
        redis.delete(key)
    redis.delete(BEAT_LOCK)


def test_ready_with_a_worker_on_every_routed_queue_and_a_beat(
    routes: None,
    quiet: None,
    worker_factory: Callable[..., Worker],
    beat_factory: Callable[..., Beat],
) -> None:
    # given no worker and no beat yet
    status, body = readiness()
    assert status == 503
    assert any(r.startswith("workers: no live worker consumes") for r in body["reasons"])
    assert "beat: no beat holds the lock" in body["reasons"]

    # when a worker consumes every routed queue and a beat runs
    worker = worker_factory("ready-all", queues=every_routed_queue())
    beat_factory("ready-beat")

    # then the system is ready
    try:
        status, body = wait_until(
            lambda: (answer := readiness())[0] == 200 and answer, what="/readyz to answer 200"
        )
    finally:
        worker.stop()  # it consumes every queue: later tests' own queues too
    assert body["status"] == "ok"
    assert body["reasons"] == []
    assert set(body["checks"]) == {"database", "broker", "workers", "beat", "backlog"}


def test_a_routed_queue_no_worker_consumes_is_named(
    routes: None, quiet: None, worker_factory: Callable[..., Worker]
) -> None:
    worker = worker_factory("ready-most", queues=every_routed_queue())
    Route.objects.create(name="lonely", event_type="lonely.*", handler="test.noop", queue="lonely")

    try:
        status, body = wait_until(
            lambda: (
                (answer := readiness())[1]["checks"]["workers"]["detail"].startswith("no live")
                and answer
            ),
            what="the heartbeat of every other queue",
        )
    finally:
        worker.stop()  # it consumes every queue: later tests' own queues too

    assert status == 503
    assert "workers: no live worker consumes lonely" in body["reasons"]


def test_a_delivery_waiting_past_the_limit_makes_the_system_unready(
    routes: None, quiet: None, settings: Any
) -> None:
    settings.SWITCHYARD_READY_MAX_WAIT = 60
    source = Source.objects.create(slug="late", kind="api")
    event = Event.objects.create(source=source, external_id="1", type="x", payload={})
    Delivery.objects.create(
        event=event, handler="test.noop", next_attempt_at=timezone.now() - timedelta(minutes=5)
    )

    status, body = readiness()

    assert status == 503
    backlog = [r for r in body["reasons"] if r.startswith("backlog:")]
    assert len(backlog) == 1
    waited = int(backlog[0].split("has waited ")[1].split(" s")[0])
    assert 300 <= waited < 360
    assert backlog[0].endswith("(limit 60 s)")
