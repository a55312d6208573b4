"""What a tick does, called directly (events.schedules.ticks.handle_tick): publish, or record why
not. The real-process tests show the same through beat and a worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError
from django.test import override_settings
from django_celery_beat.models import CrontabSchedule

from events.models import (
    Delivery,
    DeliveryStatus,
    Event,
    OverlapPolicy,
    Route,
    ScheduleTick,
    Source,
    TickStatus,
)
from events.schedules.ticks import Tick, handle_tick

from .conftest import make_schedule

pytestmark = pytest.mark.django_db

DUE = datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
ON_TIME = DUE + timedelta(seconds=2)


def tick(name: str = "nightly", due_at: datetime = DUE, **fields: Any) -> Tick:
    return Tick(name=name, due_at=due_at, **fields)


def test_a_tick_publishes_the_schedules_arguments_into_the_schedules_source() -> None:
    # given a schedule with arguments and a route on its event type
    make_schedule("nightly", every=60, kwargs={"report": "sales"})
    Route.objects.create(name="nightly", event_type="schedule.nightly", handler="test.chaos")

    # when its tick runs on time
    row = handle_tick(tick(arguments={"report": "sales"}, message_id="m-1"), now=ON_TIME)

    # then
    event = Event.objects.get()
    assert (row.status, row.event_id, row.detail) == (
        TickStatus.PUBLISHED,
        event.id,
        "1 deliveries",
    )
    assert (event.type, event.payload, event.external_id) == (
        "schedule.nightly",
        {"report": "sales"},
        "nightly@2026-03-29T05:00:00+00:00",
    )
    source = Source.objects.get(slug="schedules")
    assert (event.source_id, source.kind) == (source.id, "schedule")
    assert Delivery.objects.get(event=event).handler == "test.chaos"
    assert (row.key, row.message_id, row.schedule.name) == (event.external_id, "m-1", "nightly")


def test_the_same_run_time_twice_is_a_duplicate_that_publishes_nothing() -> None:
    make_schedule("nightly", every=60)
    first = handle_tick(tick(message_id="a"), now=ON_TIME)

    second = handle_tick(tick(message_id="b"), now=ON_TIME)

    assert (second.status, second.event_id) == (TickStatus.DUPLICATE, first.event_id)
    assert second.detail == f"this run time was already published (tick {first.pk})"
    assert Event.objects.count() == 1


def test_the_database_allows_one_tick_per_run_time_besides_duplicates() -> None:
    schedule = make_schedule("nightly", every=60)
    handle_tick(tick(), now=ON_TIME)

    with pytest.raises(IntegrityError):
        ScheduleTick.objects.create(
            schedule=schedule, name="nightly", key="nightly@2026-03-29T05:00:00+00:00",
            due_at=DUE, status=TickStatus.SKIPPED,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("expire_seconds", "late", "status"),
    [
        (3600, 3600, TickStatus.PUBLISHED),
        (3600, 3601, TickStatus.EXPIRED),
        # without its own expiry: the default (600 s), but never past the next run time
        (None, 60, TickStatus.PUBLISHED),
        (None, 61, TickStatus.EXPIRED),
    ],
)
def test_a_tick_later_than_its_expiry_is_recorded_as_expired(
    expire_seconds: int | None, late: int, status: str
) -> None:
    make_schedule("nightly", every=60, expire_seconds=expire_seconds)

    row = handle_tick(tick(), now=DUE + timedelta(seconds=late))

    assert row.status == status
    assert Event.objects.count() == (1 if status == TickStatus.PUBLISHED else 0)


@override_settings(SWITCHYARD_SCHEDULE_EXPIRES=30)
def test_without_its_own_expiry_a_schedule_uses_the_default() -> None:
    make_schedule("nightly", every=60)

    row = handle_tick(tick(), now=DUE + timedelta(seconds=31))

    assert (row.status, row.detail) == (
        TickStatus.EXPIRED,
        "31.0 s after its due time; expires after 30 s",
    )


def test_a_daily_crontab_without_its_own_expiry_waits_up_to_the_default() -> None:
    daily = CrontabSchedule.objects.create(minute="0", hour="7", timezone="Europe/Berlin")
    make_schedule("nightly", crontab=daily)

    on_time = handle_tick(tick(), now=DUE + timedelta(seconds=600))
    late = handle_tick(
        tick(due_at=DUE + timedelta(days=1)), now=DUE + timedelta(days=1, seconds=601)
    )

    assert (on_time.status, late.status) == (TickStatus.PUBLISHED, TickStatus.EXPIRED)


@pytest.mark.parametrize(
    ("overlap", "earlier", "status"),
    [
        (OverlapPolicy.SKIP, DeliveryStatus.RUNNING, TickStatus.SKIPPED),
        (OverlapPolicy.SKIP, DeliveryStatus.RETRYING, TickStatus.SKIPPED),
        (OverlapPolicy.SKIP, DeliveryStatus.PENDING, TickStatus.SKIPPED),
        (OverlapPolicy.SKIP, DeliveryStatus.DEAD_LETTERED, TickStatus.PUBLISHED),
        (OverlapPolicy.SKIP, DeliveryStatus.SUCCEEDED, TickStatus.PUBLISHED),
        (OverlapPolicy.ALLOW, DeliveryStatus.RUNNING, TickStatus.PUBLISHED),
    ],
)
def test_overlap_policy_decides_while_an_earlier_run_is_in_flight(
    overlap: str, earlier: str, status: str
) -> None:
    # given an earlier run whose delivery is in the given state
    make_schedule("nightly", every=60, overlap=overlap)
    Route.objects.create(name="nightly", event_type="schedule.nightly", handler="test.chaos")
    a_minute_ago = DUE - timedelta(minutes=1)
    before = handle_tick(tick(due_at=a_minute_ago), now=a_minute_ago)
    Delivery.objects.filter(event=before.event).update(status=earlier)

    # when the next tick comes
    row = handle_tick(tick(), now=ON_TIME)

    # then
    assert row.status == status
    if status == TickStatus.SKIPPED:
        assert row.detail == (
            f"the previous run is still in flight (event {before.event_id}, test.chaos {earlier})"
        )
        assert row.event_id is None


def test_runs_of_other_schedules_do_not_count_as_overlap() -> None:
    make_schedule("nightly", every=60)
    make_schedule("hourly", every=60)
    Route.objects.create(name="both", event_type="schedule.*", handler="test.chaos")
    other = handle_tick(tick("hourly"), now=ON_TIME)
    Delivery.objects.filter(event=other.event).update(status=DeliveryStatus.RUNNING)

    assert handle_tick(tick("nightly"), now=ON_TIME).status == TickStatus.PUBLISHED


def test_ticks_of_missing_or_disabled_schedules_are_skipped() -> None:
    make_schedule("off", every=60, enabled=False)

    missing = handle_tick(tick("gone"), now=ON_TIME)
    disabled = handle_tick(tick("off"), now=ON_TIME)

    assert [(r.status, r.detail, r.schedule_id) for r in (missing, disabled)] == [
        (TickStatus.SKIPPED, "no such schedule (deleted or renamed)", None),
        (TickStatus.SKIPPED, "the schedule is disabled", disabled.schedule_id),
    ]
    assert Event.objects.count() == 0


def test_a_disabled_schedules_source_stops_every_schedule() -> None:
    make_schedule("nightly", every=60)
    Source.objects.create(slug="schedules", kind="schedule", enabled=False)

    row = handle_tick(tick(), now=ON_TIME)

    assert (row.status, row.detail) == (TickStatus.SKIPPED, "the 'schedules' source is disabled")


def test_bad_arguments_fail_the_tick_with_the_reason() -> None:
    make_schedule("nightly", every=60)

    positional = handle_tick(tick(args=[1]), now=ON_TIME)
    nul = handle_tick(tick(due_at=DUE + timedelta(minutes=1), arguments={"a": "\x00"}), now=DUE)

    assert [(r.status, r.detail) for r in (positional, nul)] == [
        (TickStatus.FAILED, "positional arguments are not supported; use keyword arguments"),
        (TickStatus.FAILED, "cannot publish: payload contains a NUL character (\\u0000)"),
    ]
    assert Event.objects.count() == 0


def test_a_tick_without_a_due_time_is_keyed_on_its_message() -> None:
    make_schedule("nightly", every=60)

    first = handle_tick(tick(key="nightly@message:abc"), now=ON_TIME)
    again = handle_tick(tick(key="nightly@message:abc"), now=ON_TIME)
    other = handle_tick(tick(key="nightly@message:def"), now=ON_TIME)

    assert [first.status, again.status, other.status] == ["published", "duplicate", "published"]
    assert Event.objects.get(id=first.event_id).external_id == "nightly@message:abc"
