"""State transitions without a worker: claims, fencing, the sweeper, requeue.

These call the plain functions the Celery task calls, against real PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from events.delivery import execute
from events.models import Attempt, Delivery, Event, Route, Source
from events.publish import publish
from events.recovery import sweep
from events.transitions import Claim, Outcome, claim, fail, requeue, succeed
from handlers.errors import TransientError

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(db: None) -> Source:
    return Source.objects.create(slug="unit", kind="api")


def _delivery(source: Source, handler: str = "test.rebook") -> Delivery:
    result = publish(source=source, type="scenario.reservation.cancelled", payload={})
    return Delivery.objects.get(event=result.event, handler=handler)


def _claim(delivery_id: int, worker: str = "") -> Claim:
    claimed = claim(delivery_id, worker=worker)
    assert isinstance(claimed, Claim), claimed
    return claimed


def test_second_claim_of_a_running_delivery_does_nothing(source: Source, routes: None) -> None:
    delivery = _delivery(source)
    _claim(delivery.id, worker="w1")
    second = claim(delivery.id, worker="w2")
    assert getattr(second, "status", None) == "noop"
    assert Attempt.objects.filter(delivery=delivery).count() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.total_attempts) == ("running", 1, 1)
    assert Event.objects.get(id=delivery.event_id).status == "processing"


def test_a_message_that_arrives_before_the_retry_is_due_is_sent_again_for_then(
    source: Source, routes: None
) -> None:
    delivery = _delivery(source)
    claimed = _claim(delivery.id)
    fail(claimed, TransientError("later", retry_after=300), "tb", timezone.now())

    early = claim(delivery.id)

    # then it is not run, and the task is told to send it again for the due time
    assert isinstance(early, Outcome)
    assert early.status == "early"
    assert early.retry_in is not None and 298 <= early.retry_in <= 300
    delivery.refresh_from_db()
    assert (delivery.status, delivery.total_attempts) == ("retrying", 1)
    assert Attempt.objects.filter(delivery=delivery).count() == 1
    assert Event.objects.get(id=delivery.event_id).status == "failed"


def test_a_late_result_from_a_presumed_dead_worker_is_fenced_off(
    source: Source, routes: None
) -> None:
    # given attempt 1 was taken back by the sweeper and attempt 2 is running
    delivery = _delivery(source)
    stale = _claim(delivery.id, worker="old")
    Delivery.objects.filter(id=delivery.id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=60)
    )
    assert sweep(grace=0).recovered == 1
    current = _claim(delivery.id, worker="new")

    # when the old worker finally reports success
    outcome = succeed(stale, {"late": True}, [], timezone.now())

    # then nothing it says is recorded, and attempt 2 can still finish
    assert outcome.status == "noop"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.total_attempts) == ("running", 2)
    assert succeed(current, {"ok": 2}, [], timezone.now()).status == "succeeded"
    statuses = list(Attempt.objects.filter(delivery=delivery).values_list("number", "status"))
    assert sorted(statuses) == [(1, "lost"), (2, "succeeded")]


def test_sweeper_dead_letters_a_lost_last_attempt(source: Source, routes: None) -> None:
    Route.objects.filter(handler="test.rebook").update(max_attempts=1)
    delivery = _delivery(source)
    claim(delivery.id)
    Delivery.objects.filter(id=delivery.id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=60)
    )

    report = sweep(grace=0)

    assert (report.recovered, report.dead_lettered) == (0, 1)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_class) == ("dead_lettered", "WorkerLost")


def test_sweeper_leaves_deliveries_within_their_grace_alone(source: Source, routes: None) -> None:
    _delivery(source)
    assert sweep(grace=3600).resent == 0
    assert sweep(now=timezone.now() + timedelta(hours=2), grace=3600).resent == 2


def test_stale_event_is_skipped(source: Source, routes: None) -> None:
    Route.objects.filter(handler="test.rebook").update(stale_after=60)
    delivery = _delivery(source)
    Event.objects.filter(id=delivery.event_id).update(
        received_at=timezone.now() - timedelta(seconds=61)
    )

    outcome = execute(delivery.id)

    assert outcome.status == "skipped"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_class, delivery.total_attempts) == (
        "skipped",
        "Stale",
        0,
    )


def test_unknown_handler_is_retried_then_dead_letters_with_a_clear_reason(
    source: Source,
) -> None:
    # given a route naming a handler this worker does not have (a rolling deploy, or a typo)
    Route.objects.create(
        name="ghost", event_type="ghost.*", handler="no.such.handler", max_attempts=2
    )
    event = publish(source=source, type="ghost.walk", payload={}).event
    delivery = Delivery.objects.get(event=event)

    # when it runs: first a retry, since a newer worker may know the handler...
    assert execute(delivery.id, worker="w1").status == "retrying"
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())
    # ...then, attempts used up, a dead letter that says why
    assert execute(delivery.id, worker="w1").status == "dead_lettered"

    delivery.refresh_from_db()
    assert delivery.last_error == "handler 'no.such.handler' is not registered on 'w1'"
    assert delivery.error_class == "handlers.errors.TransientError"


def test_requeue_resets_once_and_a_second_click_does_nothing(
    source: Source,
    routes: None,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Route.objects.filter(handler="test.notify").update(max_attempts=1)
    result = publish(
        source=source, type="scenario.reservation.cancelled", payload={"fail": "permanent"}
    )
    delivery = Delivery.objects.get(event=result.event, handler="test.notify")
    execute(delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "dead_lettered"

    sent: list[int] = []
    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: sent.extend(j[0] for j in jobs))
    with django_capture_on_commit_callbacks(execute=True):
        first = requeue([delivery.id])
    with django_capture_on_commit_callbacks(execute=True):
        second = requeue([delivery.id])

    assert (first, second) == (1, 0)
    assert sent == [delivery.id]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.total_attempts) == ("pending", 0, 1)


def test_every_transition_moves_updated_at(source: Source, routes: None) -> None:
    delivery = _delivery(source)
    created = Delivery.objects.get(id=delivery.id).updated_at

    _claim(delivery.id)

    claimed = Delivery.objects.get(id=delivery.id)
    assert claimed.updated_at > created
    assert claimed.started_at is not None and claimed.updated_at >= claimed.started_at
