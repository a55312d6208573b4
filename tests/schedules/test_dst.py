"""A daily crontab in a zone with daylight saving runs exactly once on both change days.

Checked with the schedule's own next-run computation, the one beat uses: django-celery-beat's
TzAwareCrontab ``is_due`` on a simulated clock, last run converted to the app's zone first as
ModelEntry.is_due does, and the due time the scheduler puts on each tick (timing.due_time).
Europe/Berlin, 2026: clocks go 02:00 -> 03:00 on 29 March and 03:00 -> 02:00 on 25 October.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django_celery_beat.models import CrontabSchedule

from events.schedules.timing import EpochInterval, due_time, next_grid_point

BERLIN = ZoneInfo("Europe/Berlin")
# Longest sleep between checks: beat's own loop never sleeps longer than this.
MAX_INTERVAL = 300.0
SPRING = (datetime(2026, 3, 27, 12, tzinfo=UTC), datetime(2026, 3, 31, 12, tzinfo=UTC))
AUTUMN = (datetime(2026, 10, 23, 12, tzinfo=UTC), datetime(2026, 10, 27, 12, tzinfo=UTC))


def run_beat(hour: str, minute: str, window: tuple[datetime, datetime], app_zone: str) -> list:
    """Drive the crontab like beat does from ``start`` to ``end``; the due times it sent."""
    schedule = CrontabSchedule(minute=minute, hour=hour, timezone=BERLIN).schedule
    start, end = window
    clock = [start]
    schedule.nowfun = lambda: clock[0]
    last_run = start
    sent = []
    while clock[0] < end:
        last_in_app_zone = last_run.astimezone(ZoneInfo(app_zone))
        is_due, next_check = schedule.is_due(last_in_app_zone)
        if is_due:
            sent.append(due_time(schedule, last_in_app_zone).astimezone(BERLIN).isoformat())
            last_run = clock[0]
        # Beat wakes a few milliseconds after the time it asked for.
        clock[0] += timedelta(seconds=min(next_check, MAX_INTERVAL) + 0.003)
    return sent


@pytest.mark.parametrize("app_zone", ["UTC", "Europe/Berlin"])
def test_daily_0700_runs_once_on_the_spring_change_day(app_zone: str) -> None:
    assert run_beat("7", "0", SPRING, app_zone) == [
        "2026-03-28T07:00:00+01:00",
        "2026-03-29T07:00:00+02:00",
        "2026-03-30T07:00:00+02:00",
        "2026-03-31T07:00:00+02:00",
    ]


@pytest.mark.parametrize("app_zone", ["UTC", "Europe/Berlin"])
def test_daily_0700_runs_once_on_the_autumn_change_day(app_zone: str) -> None:
    assert run_beat("7", "0", AUTUMN, app_zone) == [
        "2026-10-24T07:00:00+02:00",
        "2026-10-25T07:00:00+01:00",
        "2026-10-26T07:00:00+01:00",
        "2026-10-27T07:00:00+01:00",
    ]


def test_a_time_the_spring_change_skips_runs_once_an_hour_later_by_the_clock() -> None:
    # 02:30 does not exist on 29 March; it is read with the offset before the change.
    assert run_beat("2", "30", SPRING, "UTC") == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_a_time_the_autumn_change_repeats_runs_once_at_its_first_occurrence() -> None:
    assert run_beat("2", "30", AUTUMN, "UTC") == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]


def test_interval_due_times_are_the_same_for_any_beat_within_a_period() -> None:
    # given two beats that last sent at different moments of the same period
    every = EpochInterval(timedelta(seconds=30))
    a = datetime(2026, 3, 29, 1, 0, 0, 120_000, tzinfo=UTC)
    b = datetime(2026, 3, 29, 1, 0, 29, 990_000, tzinfo=UTC)

    # then both send the next tick for the same run time, a multiple of 30 s
    assert due_time(every, a) == due_time(every, b) == datetime(2026, 3, 29, 1, 0, 30, tzinfo=UTC)
    # and after a day down, the one tick sent stands for the first run time missed
    assert next_grid_point(a - timedelta(days=1), timedelta(seconds=30)) == datetime(
        2026, 3, 28, 1, 0, 30, tzinfo=UTC
    )


def test_an_interval_is_due_on_its_grid_and_asks_to_be_checked_at_the_next_point() -> None:
    now = [datetime(2026, 3, 29, 1, 0, 30, 5_000, tzinfo=UTC)]
    every = EpochInterval(timedelta(seconds=30), nowfun=lambda: now[0])

    due = every.is_due(datetime(2026, 3, 29, 1, 0, 1, tzinfo=UTC))
    not_yet = every.is_due(datetime(2026, 3, 29, 1, 0, 30, 1_000, tzinfo=UTC))

    assert (due.is_due, round(due.next, 3)) == (True, 29.995)
    assert (not_yet.is_due, round(not_yet.next, 3)) == (False, 29.995)
