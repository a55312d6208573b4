"""The claim in one round trip (events.transitions.claiming._claim_at_once): it starts a
delivery exactly as the full claim does, and only where the full claim has nothing else to
decide; everything else it leaves untouched for the full claim."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from events.models import Attempt, Delivery, DeliveryStatus, Event, Route, Source
from events.publish import publish
from events.transitions import claiming
from events.transitions.claiming import Claim, claim

pytestmark = pytest.mark.django_db

SAME = (
    "status", "attempts", "total_attempts", "lease_holder", "resends", "resend_after",
    "deferred_until", "held_by", "next_attempt_at",
)  # fmt: skip


@pytest.fixture
def make(routes: None, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Delivery]:
    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: None)
    source = Source.objects.create(slug="at-once", kind="api")

    def make_one(**changes: Any) -> Delivery:
        event = publish(source=source, type="test.noop", payload={}, partition_key="k-1").event
        delivery = Delivery.objects.get(event=event)
        if changes:
            Delivery.objects.filter(id=delivery.id).update(**changes)
            delivery.refresh_from_db()
        return delivery

    return make_one


def test_it_writes_what_the_full_claim_writes(
    make: Callable[..., Delivery], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two like deliveries, one retried once before (so started_at is kept)
    earlier = timezone.now() - timedelta(minutes=5)
    fast, full = (
        make(
            status="retrying", attempts=1, total_attempts=1, started_at=earlier,
            next_attempt_at=earlier,
        )
        for _ in range(2)
    )  # fmt: skip

    # when one is claimed in one round trip and the other by the full claim
    claimed_fast = claim(fast.id, worker="w-1")
    monkeypatch.setattr(claiming, "_claim_at_once", lambda *args: None)
    claimed_full = claim(full.id, worker="w-1")

    # then both rows, both attempts, both events and both claims say the same
    assert isinstance(claimed_fast, Claim) and isinstance(claimed_full, Claim)
    rows = [Delivery.objects.get(id=d.id) for d in (fast, full)]
    fast_row, full_row = ([getattr(r, name) for name in SAME] for r in rows)
    assert fast_row == full_row
    assert rows[0].status == DeliveryStatus.RUNNING and rows[0].started_at == earlier
    assert rows[1].started_at == earlier
    attempts = [Attempt.objects.get(delivery=d) for d in (fast, full)]
    assert [(a.number, a.status, a.worker) for a in attempts] == [(2, "running", "w-1")] * 2
    assert [Event.objects.get(id=d.event_id).status for d in (fast, full)] == ["processing"] * 2
    for c, row, attempt in zip((claimed_fast, claimed_full), rows, attempts, strict=True):
        assert (c.number, c.attempts, c.attempt_id) == (2, 2, attempt.id)
        assert [getattr(c.delivery, name) for name in SAME] == [getattr(row, name) for name in SAME]
    assert claimed_fast.route == claimed_full.route


def test_a_first_claim_starts_the_clock_and_the_attempt_count(
    make: Callable[..., Delivery],
) -> None:
    delivery = make()

    claimed = claiming._claim_at_once(delivery.id, "w-1", timezone.now())

    assert claimed is not None
    row = Delivery.objects.get(id=delivery.id)
    assert (row.attempts, row.total_attempts, row.started_at) == (1, 1, claimed.delivery.started_at)
    assert row.started_at is not None
    assert Attempt.objects.get(delivery=delivery).number == 1


def _early(d: Delivery) -> None:
    Delivery.objects.filter(id=d.id).update(next_attempt_at=timezone.now() + timedelta(minutes=1))


def _stale(d: Delivery) -> None:
    Route.objects.filter(id=d.route_id).update(stale_after=60)
    Event.objects.filter(id=d.event_id).update(received_at=timezone.now() - timedelta(hours=1))


def _capped(d: Delivery) -> None:
    Route.objects.filter(id=d.route_id).update(max_concurrency=5)


def _ordered(d: Delivery) -> None:
    Route.objects.filter(id=d.route_id).update(ordered_by_key=True)


def _running(d: Delivery) -> None:
    Delivery.objects.filter(id=d.id).update(
        status="running", lease_expires_at=timezone.now() - timedelta(minutes=5)
    )


def _succeeded(d: Delivery) -> None:
    Delivery.objects.filter(id=d.id).update(status="succeeded")


def _route_deleted(d: Delivery) -> None:
    Route.objects.filter(id=d.route_id).delete()


def _gone(d: Delivery) -> None:
    Delivery.objects.filter(id=d.id).delete()


@pytest.mark.parametrize(
    "case",
    [_early, _stale, _capped, _ordered, _running, _succeeded, _route_deleted, _gone],
    ids=lambda f: f.__name__.strip("_"),
)
def test_it_leaves_what_the_full_claim_decides_untouched(
    make: Callable[..., Delivery], case: Callable[[Delivery], None]
) -> None:
    # given a delivery the full claim would re-send, skip, hold, take over or ignore
    delivery = make()
    case(delivery)
    before = list(Delivery.objects.filter(id=delivery.id).values())

    # when it is claimed in one round trip
    claimed = claiming._claim_at_once(delivery.id, "w-1", timezone.now())

    # then it was not, and nothing was written
    assert claimed is None
    assert list(Delivery.objects.filter(id=delivery.id).values()) == before
    assert not Attempt.objects.filter(delivery_id=delivery.id).exists()


def test_a_requeued_delivery_is_started_however_old_its_event(
    make: Callable[..., Delivery],
) -> None:
    # given an operator requeued a delivery of an event older than its route's stale_after
    delivery = make(attempts=0, total_attempts=2)
    _stale(delivery)

    # then the one-round-trip claim starts it, as the full claim would
    assert claiming._claim_at_once(delivery.id, "w-1", timezone.now()) is not None


def test_a_message_from_a_queue_with_flow_control_goes_straight_to_the_full_claim(
    make: Callable[..., Delivery], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a capped route, and a record of which claims try the one-round-trip way
    capped, plain = make(), make()
    route = Route.objects.get(id=capped.route_id)
    Route.objects.filter(id=route.id).update(max_concurrency=5)
    tried: list[int] = []
    at_once = claiming._claim_at_once

    def recording(delivery_id: int, *args: Any) -> Claim | None:
        tried.append(delivery_id)
        return at_once(delivery_id, *args)

    monkeypatch.setattr(claiming, "_claim_at_once", recording)

    # when a message from the capped route's queue and one from another queue are claimed
    first = claim(capped.id, worker="w-1", queue=route.queue)
    second = claim(plain.id, worker="w-1", queue=f"{route.queue}-other")

    # then only the second tried it; both were claimed
    assert tried == [plain.id]
    assert isinstance(first, Claim) and isinstance(second, Claim)
