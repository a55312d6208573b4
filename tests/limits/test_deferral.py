"""A delivery over a rate limit is deferred before its claim: no attempt, no dead letter.

These call execute() (what the Celery task calls) and the sweeper against real PostgreSQL and
the test session's Redis.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from events.delivery import execute
from events.models import Attempt, Delivery, Resource, Route, Source
from events.publish import publish
from events.recovery import sweep

pytestmark = pytest.mark.django_db


def _deliveries(source: Source, count: int) -> list[Delivery]:
    events = [publish(source=source, type="test.limited", payload={}).event for _ in range(count)]
    return [Delivery.objects.get(event=event) for event in events]


def test_a_rate_limited_delivery_is_deferred_with_no_attempt_spent_even_with_one_allowed(
    api_source: Source, limited_route: Route
) -> None:
    # given a route allowing one attempt and one start every 2 s
    Route.objects.filter(id=limited_route.id).update(rate_limit=0.5, rate_burst=1, max_attempts=1)
    first, second = _deliveries(api_source, 2)
    assert execute(first.id).status == "succeeded"

    # when the second one's message arrives at once
    before = timezone.now()
    outcome = execute(second.id)

    # then it is deferred to the start the limit reserved, its message sent for then
    assert outcome.status == "deferred"
    assert outcome.retry_in == pytest.approx(2.0, abs=0.1)
    assert (outcome.queue, outcome.time_limit) == ("limits", 60)
    second.refresh_from_db()
    assert (second.status, second.attempts, second.total_attempts) == ("pending", 0, 0)
    assert second.deferrals == 1
    assert second.deferred_reason == f"rate limit route {limited_route.name}: 0.5/s"
    assert second.deferred_until is not None and second.deferred_until == second.next_attempt_at
    assert (second.deferred_until - before).total_seconds() == pytest.approx(2.0, abs=0.1)
    assert not Attempt.objects.filter(delivery=second).exists()

    # and a copy of its message arriving before that start is sent again for it, unchanged
    early = execute(second.id)
    assert early.status == "early"
    assert early.retry_in is not None and 0 < early.retry_in <= 2.0
    second.refresh_from_db()
    assert (second.deferrals, second.total_attempts) == (1, 0)

    # when its start comes, it runs on its first attempt (the reserved token, not another)
    Delivery.objects.filter(id=second.id).update(
        deferred_until=timezone.now(), next_attempt_at=timezone.now()
    )
    assert execute(second.id).status == "succeeded"
    second.refresh_from_db()
    assert (second.attempts, second.total_attempts, second.deferrals) == (1, 1, 1)
    assert second.deferred_until is None
    assert not Delivery.objects.filter(status="dead_lettered").exists()


def test_deliveries_past_the_horizon_are_refused_and_never_dead_lettered(
    api_source: Source, limited_route: Route, settings: Any
) -> None:
    # given one start a minute, starts reserved at most 10 s ahead (so one lent token)
    settings.SWITCHYARD_RATE_LIMIT_HORIZON = 10
    Route.objects.filter(id=limited_route.id).update(rate_limit=1 / 60, max_attempts=1)
    deliveries = _deliveries(api_source, 4)

    # when each message arrives, and each again
    outcomes = [execute(d.id).status for d in deliveries]
    again = [execute(d.id).status for d in deliveries[2:]]

    # then one runs, one is given the next start, the rest wait to ask again: no attempt
    assert outcomes == ["succeeded", "deferred", "deferred", "deferred"]
    assert again == ["early", "early"]
    rows = list(Delivery.objects.filter(id__in=[d.id for d in deliveries]).order_by("id"))
    assert [r.total_attempts for r in rows] == [1, 0, 0, 0]
    assert [r.deferred_until is not None for r in rows[1:]] == [True, False, False]
    assert all(r.next_attempt_at > timezone.now() + timedelta(seconds=50) for r in rows[1:])
    assert not Delivery.objects.filter(status="dead_lettered").exists()


def test_a_resources_limit_defers_with_its_name_as_the_reason(
    api_source: Source, limited_route: Route
) -> None:
    # given the resource the handler declares, limited; the route itself is not
    Resource.objects.create(name="test-api", rate=0.2, burst=1)
    assert limited_route.resources == ["test-api"]
    first, second = _deliveries(api_source, 2)

    assert execute(first.id).status == "succeeded"
    outcome = execute(second.id)

    assert outcome.status == "deferred"
    assert outcome.retry_in == pytest.approx(5.0, abs=0.1)
    second.refresh_from_db()
    assert second.deferred_reason == "rate limit test-api: 0.2/s"


def test_the_sweeper_leaves_a_deferred_delivery_until_its_start_then_re_sends_it(
    api_source: Source, limited_route: Route
) -> None:
    Route.objects.filter(id=limited_route.id).update(rate_limit=0.1)
    first, second = _deliveries(api_source, 2)
    execute(first.id)
    assert execute(second.id).status == "deferred"
    second.refresh_from_db()
    start = second.deferred_until
    assert start is not None and start == second.next_attempt_at

    # a sweep before its start (no grace) leaves it: its message is not lost, only waiting
    assert sweep(now=start - timedelta(seconds=1), grace=0).resent == 0
    # a sweep after its start finds it still waiting: the message was lost; sent again
    assert sweep(now=start + timedelta(seconds=1), grace=0).resent == 1
    second.refresh_from_db()
    assert (second.status, second.resends, second.total_attempts) == ("pending", 1, 0)


def test_with_redis_unreachable_deliveries_run_unlimited(
    api_source: Source, limited_route: Route, settings: Any
) -> None:
    Route.objects.filter(id=limited_route.id).update(rate_limit=0.1)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    statuses = [execute(d.id).status for d in _deliveries(api_source, 3)]

    assert statuses == ["succeeded"] * 3
