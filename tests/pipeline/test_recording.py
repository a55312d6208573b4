"""Recording results: what a handler returns or raises is stored, whatever it contains."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

import events.delivery as delivery_module
import events.transitions.outcomes as outcomes_module
from events.delivery import execute
from events.holders import holder, holder_is_dead
from events.models import Attempt, Delivery, Event, Route, Source
from events.publish import publish
from events.recovery import sweep
from events.transitions import Claim, claim, requeue


@pytest.fixture
def source(db: None) -> Source:
    return Source.objects.create(slug="recording", kind="api")


def _delivery(source: Source, event_type: str, handler: str | None = None) -> Delivery:
    event = publish(source=source, type=event_type, payload={}).event
    found = Delivery.objects.filter(event=event)
    return found.get(handler=handler) if handler else found.get()


@pytest.mark.django_db
def test_nul_and_surrogates_in_an_error_are_stored_escaped(source: Source, routes: None) -> None:
    delivery = _delivery(source, "test.nul_error")

    assert execute(delivery.id).status == "dead_lettered"

    delivery.refresh_from_db()
    assert delivery.last_error == "upstream said \\x00 and \\ud800"
    attempt = Attempt.objects.get(delivery=delivery)
    assert attempt.error_message == "upstream said \\x00 and \\ud800"
    assert "\x00" not in attempt.traceback


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("event_type", "reason"),
    [
        ("test.nul_outcome", "handler outcome cannot be stored: payload contains a NUL"),
        ("test.huge_outcome", "handler outcome is 300012 bytes; the limit is 262144"),
    ],
)
def test_an_unstorable_outcome_dead_letters_with_the_reason(
    source: Source, routes: None, event_type: str, reason: str
) -> None:
    delivery = _delivery(source, event_type)

    assert execute(delivery.id).status == "dead_lettered"

    delivery.refresh_from_db()
    assert delivery.outcome is None
    assert delivery.last_error.startswith(reason)


@pytest.mark.django_db
def test_a_failed_attempt_publishes_none_of_its_emitted_events(
    source: Source, routes: None
) -> None:
    delivery = _delivery(source, "test.emit_then_fail")

    assert execute(delivery.id).status == "dead_lettered"

    assert not Event.objects.filter(type="test.emitted").exists()


@pytest.mark.django_db(transaction=True)
def test_a_database_error_while_recording_is_retried_not_lost(
    source: Source, routes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the connection drops once, just as the success is being written (and no message
    # is sent: this transactional test commits, and a worker left running by another test
    # would take the delivery first)
    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: None)
    delivery = _delivery(source, "scenario.reservation.cancelled", "test.rebook")
    # (a plain success on PostgreSQL is written in one round trip, elsewhere by _finish)
    name = "_finish_at_once" if connection.vendor == "postgresql" else "_finish"
    real = getattr(outcomes_module, name)
    calls = {"n": 0}

    def drops_once(*args: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:  # the success's first try
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args)

    monkeypatch.setattr(outcomes_module, name, drops_once)
    monkeypatch.setattr(delivery_module, "RECORD_RETRY_DELAYS", (0.01,))

    # when the delivery runs
    outcome = execute(delivery.id)

    # then the success is recorded on the second try, and the handler ran once
    assert calls["n"] == 2
    assert outcome.status == "succeeded"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.total_attempts) == ("succeeded", 1)
    from tests.testapp.models import HandlerCall

    assert HandlerCall.objects.filter(handler="test.rebook").count() == 1


@pytest.mark.django_db
def test_a_handler_raising_system_exit_is_recorded_as_a_failure(
    source: Source, routes: None
) -> None:
    delivery = _delivery(source, "test.exit")

    outcome = execute(delivery.id)

    assert outcome.status == "retrying"
    attempt = Attempt.objects.get(delivery=delivery)
    assert (attempt.status, attempt.error_class, attempt.error_message) == (
        "failed",
        "SystemExit",
        "3",
    )


@pytest.mark.django_db
def test_a_claim_takes_a_short_lease_in_this_process_name_whatever_the_time_limit(
    source: Source, routes: None, settings: Any
) -> None:
    settings.SWITCHYARD_LEASE_SECONDS = 30
    delivery = _delivery(source, "scenario.reservation.cancelled", "test.rebook")
    Route.objects.filter(handler="test.rebook").update(time_limit=900)
    before = timezone.now()

    claimed = claim(delivery.id)

    assert isinstance(claimed, Claim)
    delivery.refresh_from_db()
    assert delivery.lease_expires_at is not None
    lease = (delivery.lease_expires_at - before).total_seconds()
    assert 29 <= lease <= 31
    assert delivery.lease_holder == holder()
    assert not holder_is_dead(delivery.lease_holder)


@pytest.mark.django_db
def test_the_sweeper_backs_off_re_sending_a_delivery_nobody_picks_up(
    source: Source, routes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: None)
    delivery = _delivery(source, "scenario.reservation.cancelled", "test.rebook")
    start = timezone.now() + timedelta(seconds=10)

    def resent_at(offset: float) -> int:
        return sweep(now=start + timedelta(seconds=offset), grace=1).resent

    # re-sent, then not again until 1 s, 2 s, 4 s have passed after each re-send
    assert resent_at(0) == 2  # both deliveries of the event
    assert resent_at(0.5) == 0
    assert resent_at(1.5) == 2
    assert resent_at(3.0) == 0
    assert resent_at(3.6) == 2
    assert resent_at(7.0) == 0
    assert resent_at(7.7) == 2
    delivery.refresh_from_db()
    assert delivery.resends == 4


@pytest.mark.django_db
def test_a_requeued_delivery_runs_even_if_its_event_is_stale(
    source: Source, routes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a dead letter whose route skips events older than a minute, on an old event
    Route.objects.filter(handler="test.notify").update(max_attempts=1, stale_after=60)
    result = publish(
        source=source, type="scenario.reservation.cancelled", payload={"fail": "permanent"}
    )
    delivery = Delivery.objects.get(event=result.event, handler="test.notify")
    execute(delivery.id)
    Event.objects.filter(id=result.event.id).update(received_at=timezone.now() - timedelta(hours=1))
    Event.objects.filter(id=result.event.id).update(payload={})  # the cause is fixed
    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: None)

    # when an operator requeues it
    assert requeue([delivery.id]) == 1

    # then it runs (the operator asked for it), rather than being skipped as stale
    assert execute(delivery.id).status == "succeeded"
