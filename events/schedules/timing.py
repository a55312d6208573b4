"""When a tick is due, computed with the schedule's own next-run arithmetic.

Beat sends a tick once ``schedule.is_due(last_run_at)`` says so; the tick stands for the first
run time after ``last_run_at``. Normally that is a moment ago. After beat was down it is the
first run time it missed, long past: that is how the task tells a stale catch-up tick from a
fresh one (events.schedules.ticks).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from celery import schedules
from celery.utils.time import maybe_make_aware, remaining
from django_celery_beat.models import PeriodicTask

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def next_grid_point(after: datetime, period: timedelta) -> datetime:
    """The first multiple of ``period`` since the Unix epoch strictly after ``after``."""
    step = period // MICROSECOND
    elapsed = (maybe_make_aware(after).astimezone(UTC) - EPOCH) // MICROSECOND
    return EPOCH + timedelta(microseconds=(elapsed // step + 1) * step)


class EpochInterval(schedules.schedule):
    """An interval whose runs fall on multiples of the interval since the Unix epoch (every
    5 minutes: :00, :05, ... UTC), not ``interval`` after whenever beat last sent.

    Celery's plain interval counts from the moment the previous tick was sent, so two beats,
    or one beat before and after a restart, disagree about the run times by their sending
    delays. On a fixed grid every beat computes the same due time for a tick, and so the same
    tick key, which is what lets a duplicate be recognised.
    """

    run_every: timedelta  # set by schedule.__init__; declared for the type checker

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        due = next_grid_point(last_run_at, self.run_every)
        return due - maybe_make_aware(self.now()).astimezone(UTC)

    def is_due(self, last_run_at: datetime) -> schedules.schedstate:
        rem = self.remaining_estimate(maybe_make_aware(last_run_at)).total_seconds()
        if rem > 0:
            return schedules.schedstate(is_due=False, next=rem)
        # Due: check again at the grid point after now, not a whole interval after now, so
        # sending delays do not add up.
        now = maybe_make_aware(self.now())
        following = (next_grid_point(now, self.run_every) - now.astimezone(UTC)).total_seconds()
        return schedules.schedstate(is_due=True, next=max(following, 0.0))


def on_grid(schedule: Any, app: Any = None) -> Any:
    """``schedule`` as an EpochInterval if it is a plain interval; any other unchanged."""
    if type(schedule) is not schedules.schedule or schedule.relative:
        return schedule
    interval: Any = schedule
    return EpochInterval(interval.run_every, nowfun=interval.nowfun, app=app)


def due_time(schedule: Any, last_run_at: datetime) -> datetime:
    """The run time (UTC) of the tick beat sends when ``schedule.is_due(last_run_at)``."""
    last = maybe_make_aware(last_run_at)
    if isinstance(schedule, EpochInterval):
        return next_grid_point(last, schedule.run_every)
    if isinstance(schedule, schedules.crontab):
        # remaining() adds the crontab's wall-clock step in the schedule's zone and measures
        # the rest in UTC, so a DST change between now and the run time is accounted for.
        start, ends_in, now = schedule.remaining_delta(last)
        return now.astimezone(UTC) + remaining(start, ends_in, now)
    if isinstance(schedule, schedules.schedule) and not schedule.relative:
        every: timedelta = schedule.run_every  # type: ignore[attr-defined]
        return last.astimezone(UTC) + every
    now = maybe_make_aware(schedule.now()).astimezone(UTC)
    return now + schedule.remaining_estimate(last)


def next_runs(task: PeriodicTask, now: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` run times (UTC) of ``task`` after ``now`` (or after its start time,
    if that is later), computed as beat computes them: a crontab in its own time zone, an
    interval on the epoch grid. Empty for a task with neither."""
    model: Any = task.crontab or task.interval
    if model is None:
        return []
    schedule = on_grid(model.schedule)
    after = maybe_make_aware(now).astimezone(UTC)
    if task.start_time is not None and maybe_make_aware(task.start_time) > after:
        # A run due exactly at the start time counts.
        after = maybe_make_aware(task.start_time).astimezone(UTC) - MICROSECOND
    runs = []
    for _ in range(count):
        after = due_time(schedule, after)
        runs.append(after)
    return runs
