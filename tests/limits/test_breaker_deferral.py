"""An open circuit breaker defers deliveries before their claim: no attempt spent, no dead
letter, even with one attempt allowed; its probe's success closes it. These call execute()
(what the Celery task calls) against real PostgreSQL and the test session's Redis."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from django.utils import timezone

from events import breakers
from events.delivery import execute
from events.models import Attempt, Delivery, Resource, Route, Source
from events.publish import publish

pytestmark = pytest.mark.django_db


def _delivery(source: Source, **payload: object) -> Delivery:
    event = publish(source=source, type="test.breaker", payload=dict(payload)).event
    return Delivery.objects.get(event=event)


def _due_now(delivery: Delivery) -> None:
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())


@pytest.fixture
def flaky(db: None) -> Resource:
    return Resource.objects.create(
        name="flaky", breaker_enabled=True, breaker_threshold=2, breaker_cooldown=60
    )


def test_an_open_breaker_defers_without_spending_an_attempt_even_with_one_allowed(
    api_source: Source, breaker_route: Route, flaky: Resource
) -> None:
    # given a route allowing one attempt, and two transient failures of its resource
    Route.objects.filter(id=breaker_route.id).update(max_attempts=1)
    for _ in range(2):
        assert execute(_delivery(api_source, fail=True).id).status == "dead_lettered"

    # when the next delivery's message arrives
    waiting = _delivery(api_source)
    outcome = execute(waiting.id)

    # then it is deferred until the cool-down ends, with no attempt
    assert outcome.status == "deferred"
    assert outcome.retry_in is not None and 59 < outcome.retry_in <= 60.5
    assert (outcome.queue, outcome.time_limit) == ("breakers", 60)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts, waiting.total_attempts) == ("pending", 0, 0)
    assert waiting.deferrals == 1
    assert waiting.deferred_reason.startswith("circuit open: flaky since ")
    assert waiting.deferred_reason.endswith(", 2 failures in 30 s")
    assert waiting.deferred_until is None
    assert not Attempt.objects.filter(delivery=waiting).exists()

    # when the cool-down has ended, it runs as the probe, succeeds, and closes the breaker
    breaker = breakers.of(flaky)
    breakers.redis_client(breakers.settings.REDIS_URL).hset(
        breaker.state_key, "until", f"{timezone.now().timestamp():.6f}"
    )
    _due_now(waiting)
    assert execute(waiting.id).status == "succeeded"
    waiting.refresh_from_db()
    assert (waiting.attempts, waiting.deferrals) == (1, 1)
    assert breakers.read(breaker).state == "closed"
    assert execute(_delivery(api_source).id).status == "succeeded"


def test_a_permanent_error_does_not_count_against_the_breaker(
    api_source: Source, breaker_route: Route, flaky: Resource
) -> None:
    Route.objects.filter(id=breaker_route.id).update(max_attempts=1)
    Resource.objects.filter(id=flaky.id).update(breaker_threshold=1)
    # given a breaker opening at the first failure, when an attempt fails permanently
    assert execute(_delivery(api_source, permanent=True).id).status == "dead_lettered"

    # then that says nothing about the resource: the breaker is closed, the next one runs
    assert breakers.read(breakers.of(Resource.objects.get(id=flaky.id))).state == "closed"
    assert execute(_delivery(api_source).id).status == "succeeded"


def test_a_breaker_forced_open_in_the_database_holds_its_deliveries(
    api_source: Source, breaker_route: Route, flaky: Resource
) -> None:
    Resource.objects.filter(id=flaky.id).update(breaker_enabled=False, breaker_mode="open")
    waiting = _delivery(api_source)
    outcome = execute(waiting.id)
    assert outcome.status == "deferred"
    waiting.refresh_from_db()
    assert (waiting.deferred_reason, waiting.total_attempts) == ("circuit forced open: flaky", 0)

    # forced closed: it runs, though Redis holds the breaker open
    Resource.objects.filter(id=flaky.id).update(breaker_enabled=True, breaker_mode="closed")
    automatic = replace(breakers.of(Resource.objects.get(id=flaky.id)), mode="auto")
    assert [breakers.record(automatic, ok=False) for _ in range(2)] == ["closed", "open"]
    _due_now(waiting)
    assert execute(waiting.id).status == "succeeded"


def test_with_redis_unreachable_the_breaker_holds_nothing(
    api_source: Source, breaker_route: Route, flaky: Resource, settings: Any
) -> None:
    Resource.objects.filter(id=flaky.id).update(breaker_threshold=1)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    statuses = [execute(_delivery(api_source, fail=True).id).status for _ in range(2)]
    statuses.append(execute(_delivery(api_source).id).status)

    assert statuses == ["retrying", "retrying", "succeeded"]
