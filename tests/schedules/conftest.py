"""Schedules under test: rows made like the admin makes them, a fast beat, and a worker with
room for slow handlers next to the ticks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from events.models import Event, OverlapPolicy, SchedulePolicy, ScheduleTick, TickStatus
from events.schedules import SCHEDULE_TASK
from tests.conftest import Beat, Worker

# Beat looks at the schedule every half second and a stopped beat's lock lapses after 3 s.
FAST_BEAT = {"SWITCHYARD_BEAT_MAX_INTERVAL": "0.5", "SWITCHYARD_BEAT_LOCK_TTL": "3"}


def make_schedule(
    name: str,
    *,
    every: int | None = None,
    crontab: CrontabSchedule | None = None,
    kwargs: dict[str, Any] | None = None,
    overlap: str = OverlapPolicy.SKIP,
    enabled: bool = True,
    **fields: Any,
) -> PeriodicTask:
    interval = None
    if every is not None:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=every, period=IntervalSchedule.SECONDS
        )
    task = PeriodicTask.objects.create(
        name=name,
        task=SCHEDULE_TASK,
        interval=interval,
        crontab=crontab,
        kwargs=json.dumps(kwargs or {}),
        enabled=enabled,
        **fields,
    )
    SchedulePolicy.objects.create(periodic_task=task, overlap=overlap)
    return task


def ticks(name: str, status: str | None = None) -> list[ScheduleTick]:
    found = ScheduleTick.objects.filter(name=name).order_by("due_at", "recorded_at")
    if status is not None:
        found = found.filter(status=status)
    return list(found.select_related("event"))


def count(name: str, status: str = TickStatus.PUBLISHED) -> int:
    return ScheduleTick.objects.filter(name=name, status=status).count()


def events_of(name: str) -> list[Event]:
    return list(Event.objects.filter(type=f"schedule.{name}").order_by("received_at"))


def before(moment: datetime) -> Callable[[ScheduleTick], bool]:
    return lambda tick: tick.due_at < moment


@pytest.fixture(scope="session")
def roomy_worker(worker_factory: Callable[..., Worker]) -> Worker:
    """Room for three slow handlers at once and the ticks beside them."""
    return worker_factory("schedules", concurrency=8)


@pytest.fixture
def fast_beat(beat_factory: Callable[..., Beat]) -> Callable[[str], Beat]:
    def start(name: str) -> Beat:
        return beat_factory(name, env=FAST_BEAT)

    return start
