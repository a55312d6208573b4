"""manage.py install_schedules: the default schedules, idempotent, never overwriting an edit."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from events.models import OverlapPolicy, SchedulePolicy
from events.routing import matching_routes, sync_routes
from events.schedules.ticks import schedules_source_as_routed

pytestmark = pytest.mark.django_db


def install() -> list[str]:
    out = io.StringIO()
    call_command("install_schedules", stdout=out)
    return out.getvalue().splitlines()


@override_settings(TIME_ZONE="Europe/Berlin")
def test_installs_the_daily_briefing_and_the_hourly_metrics_check_once() -> None:
    # given the routes migrate makes (metrics-check is a built-in handler)
    sync_routes()

    # when it runs twice
    first = install()
    second = install()

    # then the first run created both and said so, the second left them
    assert first == [
        "schedule 'daily-briefing' created: At 07:00 AM Europe/Berlin, enabled; "
        "event schedule.daily-briefing -> " + _listeners("schedule.daily-briefing"),
        "schedule 'metrics-check' created: Every hour Europe/Berlin, enabled; "
        "event schedule.metrics-check -> metrics-check",
        "2 schedule(s) created, 0 already there.",
    ]
    assert second[-1] == "0 schedule(s) created, 2 already there."
    assert [line.split(":")[0] for line in second[:2]] == [
        "schedule 'daily-briefing' left as it is",
        "schedule 'metrics-check' left as it is",
    ]
    rows = {
        task.name: (
            task.task,
            (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)),
            json.loads(task.kwargs),
            task.expire_seconds,
            task.enabled,
        )
        for task in PeriodicTask.objects.exclude(task__in=["events.sweep"]).select_related(
            "crontab"
        )
    }
    assert rows == {
        "daily-briefing": ("events.schedule", ("0", "7", "Europe/Berlin"), {}, 7200, True),
        "metrics-check": ("events.schedule", ("0", "*", "Europe/Berlin"), {}, 900, True),
    }
    assert set(SchedulePolicy.objects.values_list("overlap", flat=True)) == {OverlapPolicy.SKIP}


def test_an_edited_default_is_left_as_the_operator_made_it() -> None:
    install()
    task = PeriodicTask.objects.get(name="daily-briefing")
    task.crontab.hour = "8"
    task.crontab.save()
    task.enabled = False
    task.save()

    lines = install()

    task.refresh_from_db()
    assert (task.crontab.hour, task.enabled) == ("8", False)
    assert lines[0].startswith("schedule 'daily-briefing' left as it is: At 08:00 AM UTC, disabled")


def test_a_same_named_task_of_another_kind_is_reported_not_replaced() -> None:
    crontab = CrontabSchedule.objects.create(minute="5", hour="*")
    PeriodicTask.objects.create(name="metrics-check", task="events.sweep", crontab=crontab)

    lines = install()

    assert lines[1] == (
        "schedule 'metrics-check' left as it is: runs task 'events.sweep', not events.schedule: "
        "it publishes no events"
    )


def _listeners(etype: str) -> str:
    handlers = ", ".join(
        route.handler for route in matching_routes(etype, {}, source=schedules_source_as_routed())
    )
    return handlers or "none yet (add a route)"


def test_make_demo_installs_them_too(settings: Any, tmp_path: Path) -> None:
    # demo_setup is what `make demo` (manage.py up --demo) runs
    settings.VAR_DIR = tmp_path
    out = io.StringIO()

    call_command("demo_setup", stdout=out)

    assert "2 schedule(s) created, 0 already there." in out.getvalue()
    assert set(
        PeriodicTask.objects.filter(task="events.schedule").values_list("name", flat=True)
    ) == {"daily-briefing", "metrics-check"}
