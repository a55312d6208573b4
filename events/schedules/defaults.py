"""The schedules every installation starts with, installed by ``manage.py install_schedules``
(and ``make demo``). Installing is idempotent and never overwrites: a schedule that exists by
name is left as the operator made it."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from ..models import OverlapPolicy, SchedulePolicy
from . import SCHEDULE_TASK


@dataclass(frozen=True)
class DefaultSchedule:
    name: str
    minute: str
    hour: str
    # A tick later than this is recorded as expired instead of run.
    expire_seconds: int
    description: str


DEFAULTS = (
    DefaultSchedule(
        name="daily-briefing",
        minute="0",
        hour="7",
        expire_seconds=2 * 3600,
        description="The daily briefing, at 07:00 local time (event schedule.daily-briefing).",
    ),
    DefaultSchedule(
        name="metrics-check",
        minute="0",
        hour="*",
        expire_seconds=15 * 60,
        description="Hourly counts of events by status and of dead letters "
        "(event schedule.metrics-check, handler metrics-check).",
    ),
)


@dataclass(frozen=True)
class Installed:
    task: PeriodicTask
    created: bool


def crontab_for(spec: DefaultSchedule, zone: str) -> CrontabSchedule:
    fields = {
        "minute": spec.minute,
        "hour": spec.hour,
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": zone,
    }
    existing = CrontabSchedule.objects.filter(**fields).order_by("pk").first()
    return existing or CrontabSchedule.objects.create(**fields)


def install(spec: DefaultSchedule, *, zone: str | None = None) -> Installed:
    """Create the schedule (crontab in ``zone``, default ``TIME_ZONE``) unless one by its name
    exists."""
    existing = PeriodicTask.objects.filter(name=spec.name).first()
    if existing is not None:
        return Installed(existing, created=False)
    try:
        with transaction.atomic():
            task = PeriodicTask.objects.create(
                name=spec.name,
                task=SCHEDULE_TASK,
                crontab=crontab_for(spec, zone or settings.TIME_ZONE),
                kwargs="{}",
                expire_seconds=spec.expire_seconds,
                description=spec.description,
                enabled=True,
            )
            SchedulePolicy.objects.create(periodic_task=task, overlap=OverlapPolicy.SKIP)
    except IntegrityError:
        # Another install_schedules got there first.
        return Installed(PeriodicTask.objects.get(name=spec.name), created=False)
    return Installed(task, created=True)
