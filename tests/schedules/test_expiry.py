"""Ticks that could not run in time expire instead of running late: messages that waited in the
broker while no worker consumed them, and beat's catch-up tick after it was down."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import CrontabSchedule

from agents_project.celery import app
from events.models import Event, TickStatus
from events.schedules.timing import next_grid_point
from tests.conftest import Beat, RedisServer, Worker, wait_until

from .conftest import count, make_schedule, ticks

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PARKED = "schedules-parked"


def test_ticks_that_waited_in_the_broker_past_their_expiry_are_recorded_not_run(
    roomy_worker: Worker, fast_beat: Callable[[str], Beat], redis_server: RedisServer
) -> None:
    # given a schedule every second, expiring after one second, on a queue nobody consumes
    make_schedule("parked", every=1, expire_seconds=1, queue=PARKED)
    beat = fast_beat("parked")
    client = redis_server.client()
    wait_until(lambda: client.llen(PARKED) >= 3, timeout=20, what="three ticks to queue up")
    beat.stop()
    queued = client.llen(PARKED)

    # when a worker starts consuming the queue
    app.control.add_consumer(PARKED, destination=[f"{roomy_worker.name}@{_host()}"], reply=True)
    try:
        wait_until(lambda: len(ticks("parked")) == queued, timeout=30, what="every queued tick")
    finally:
        app.control.cancel_consumer(PARKED, destination=[f"{roomy_worker.name}@{_host()}"])

    # then each tick ran only if it was at most a second late, and the first, which waited
    # at least two seconds, expired
    recorded = ticks("parked")
    for tick in recorded:
        late = (tick.recorded_at - tick.due_at).total_seconds()
        assert tick.status == (TickStatus.EXPIRED if late > 1 else TickStatus.PUBLISHED), [
            (t.due_at, t.sent_at, t.recorded_at, t.status, t.detail) for t in recorded
        ]
    assert recorded[0].status == TickStatus.EXPIRED
    assert recorded[0].detail.endswith("expires after 1 s")
    expired = [tick for tick in recorded if tick.status == TickStatus.EXPIRED]
    assert all(tick.event_id is None for tick in expired)
    assert Event.objects.filter(type="schedule.parked").count() == len(recorded) - len(expired)


def test_beat_back_from_downtime_sends_one_catch_up_tick_that_expires(
    roomy_worker: Worker, fast_beat: Callable[[str], Beat]
) -> None:
    # given schedules whose last runs were long ago, as after beat was down for hours
    started = datetime.now(UTC)
    hour_ago = started - timedelta(hours=1)
    every_minute, _ = CrontabSchedule.objects.get_or_create(
        minute="*", hour="*", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC",
    )  # fmt: skip
    make_schedule("interval-late", every=2, expire_seconds=60, last_run_at=hour_ago)
    make_schedule("crontab-late", crontab=every_minute, expire_seconds=60, last_run_at=hour_ago)

    # when beat starts again
    beat = fast_beat("catch-up")
    wait_until(
        lambda: count("interval-late") >= 2 and len(ticks("crontab-late")) >= 1,
        timeout=20,
        what=f"the catch-up ticks and fresh ones; beat log:\n{beat.log()}",
    )
    beat.stop()

    # then each sent one tick for the first run time it missed, recorded as expired, and
    # nothing else from the downtime: no storm of stale runs
    stale = [t for t in ticks("interval-late") if t.due_at < started]
    assert [(t.due_at, t.status) for t in stale] == [
        (next_grid_point(hour_ago, timedelta(seconds=2)), TickStatus.EXPIRED)
    ]
    first_minute = hour_ago.replace(second=0, microsecond=0) + timedelta(minutes=1)
    stale = [t for t in ticks("crontab-late") if t.due_at < started]
    assert [(t.due_at, t.status) for t in stale] == [(first_minute, TickStatus.EXPIRED)]
    # the interval then ran on its grid again, on time
    fresh = [t for t in ticks("interval-late") if t.due_at >= started]
    assert [t.status for t in fresh][:2] == [TickStatus.PUBLISHED, TickStatus.PUBLISHED]
    assert all(t.due_at.timestamp() % 2 == 0 for t in fresh)
    assert count("interval-late", TickStatus.DUPLICATE) == 0


def _host() -> str:
    import socket

    return socket.gethostname()
