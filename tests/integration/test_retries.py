"""Retries with growing backoff, and the outbox for follow-up events, on a real worker."""

from __future__ import annotations

from typing import Any

import pytest

from events.models import Attempt, Delivery, Event, Source
from events.publish import publish
from tests.conftest import wait_until
from tests.testapp.models import HandlerCall

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api_source(db: None) -> Source:
    return Source.objects.create(slug="api-tests", kind="api")


def test_transient_errors_retry_with_growing_delays(
    worker: Any, routes: None, api_source: Source
) -> None:
    # given a handler that raises TransientError on attempts 1 and 2
    event = publish(source=api_source, type="test.flaky", payload={"n": 1}).event

    # when the worker runs it
    delivery = wait_until(
        lambda: Delivery.objects.filter(event=event, status="succeeded").first(),
        timeout=40,
        what="the flaky delivery to succeed",
    )

    # then it is done on attempt 3, after two recorded failures
    assert delivery.total_attempts == 3
    assert delivery.outcome == {"attempt": 3}
    attempts = list(Attempt.objects.filter(delivery=delivery).order_by("number"))
    assert [a.status for a in attempts] == ["failed", "failed", "succeeded"]
    assert [a.error_class for a in attempts] == [
        "handlers.errors.TransientError",
        "handlers.errors.TransientError",
        "",
    ]
    assert attempts[0].error_message == "upstream unavailable (attempt 1)"

    # the scheduled delays grow exponentially (base 1 s, jitter only stretches)...
    d1, d2 = attempts[0].retry_delay, attempts[1].retry_delay
    assert d1 is not None and d2 is not None
    assert 1.0 <= d1 <= 1.25
    assert 2.0 <= d2 <= 2.5
    # ...and the worker honoured them: each gap is at least its delay, and the second is longer
    gap1 = (attempts[1].started_at - attempts[0].finished_at).total_seconds()
    gap2 = (attempts[2].started_at - attempts[1].finished_at).total_seconds()
    assert gap1 >= d1 - 0.05
    assert gap2 >= d2 - 0.05
    assert gap2 > gap1
    assert HandlerCall.objects.filter(handler="test.flaky").count() == 3
    assert Event.objects.get(id=event.id).status == "processed"


def test_exhausted_retries_dead_letter_with_the_error_kept(
    worker: Any, routes: None, api_source: Source
) -> None:
    # given the flaky handler's route allows only two attempts
    from events.models import Route

    Route.objects.filter(handler="test.flaky").update(max_attempts=2, backoff_base=0.2)
    event = publish(source=api_source, type="test.flaky", payload={"n": 2}).event

    delivery = wait_until(
        lambda: Delivery.objects.filter(event=event, status="dead_lettered").first(),
        timeout=30,
        what="the delivery to be dead-lettered",
    )

    assert delivery.total_attempts == 2
    assert delivery.error_class == "handlers.errors.TransientError"
    assert delivery.last_error == "upstream unavailable (attempt 2)"
    last = Attempt.objects.get(delivery=delivery, number=2)
    assert last.retry_delay is None
    assert "TransientError: upstream unavailable (attempt 2)" in last.traceback
    assert Event.objects.get(id=event.id).status == "dead_lettered"


def test_emitted_events_are_published_with_the_success(
    worker: Any, routes: None, api_source: Source
) -> None:
    event = publish(source=api_source, type="test.emit", payload={}).event

    # the follow-up is routed to test.child, so it is only processed if it was enqueued
    follow_up = wait_until(
        lambda: Event.objects.filter(type="test.emitted", status="processed").first(),
        timeout=30,
        what="the follow-up event to be processed",
    )

    parent = Delivery.objects.get(event=event)
    assert parent.status == "succeeded"
    assert follow_up.payload == {"parent": str(event.id)}
    assert follow_up.source.slug == "switchyard"
    assert follow_up.emitted_by_id == parent.id
    assert follow_up.external_id == f"{parent.id}:0"
    child = Delivery.objects.get(event=follow_up)
    assert (child.handler, child.outcome) == ("test.child", {"parent": str(event.id)})


def test_a_route_with_twelve_attempts_uses_all_twelve(
    worker: Any, routes: None, api_source: Source
) -> None:
    # Retries are counted in the database, not by Celery's retry counter (max_retries).
    event = publish(source=api_source, type="test.always", payload={}).event

    delivery = wait_until(
        lambda: Delivery.objects.filter(event=event, status="dead_lettered").first(),
        timeout=60,
        what="the delivery to use its twelve attempts",
    )

    assert delivery.total_attempts == 12
    assert HandlerCall.objects.filter(handler="test.always").count() == 12
    assert delivery.last_error == "still failing"
