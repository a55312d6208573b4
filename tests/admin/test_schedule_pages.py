"""A schedule's admin pages: the next run times computed from its crontab or interval and time
zone, Switchyard's own help texts, and no icon that edits a crontab other tasks share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from events.schedules import SCHEDULE_TASK
from events.schedules.timing import next_runs

pytestmark = pytest.mark.django_db

SCHEDULES = reverse("admin:events_schedule_changelist")


def schedule(name: str, **fields: Any) -> PeriodicTask:
    return PeriodicTask.objects.create(name=name, task=SCHEDULE_TASK, **fields)


def berlin_seven() -> CrontabSchedule:
    return CrontabSchedule.objects.create(minute="0", hour="7", timezone="Europe/Berlin")


def test_a_crontab_runs_next_at_its_local_time_across_a_dst_change() -> None:
    # given 07:00 in Berlin, the day before clocks go forward (2026-03-29)
    task = schedule("briefing", crontab=berlin_seven())

    runs = next_runs(task, datetime(2026, 3, 28, 12, 0, tzinfo=UTC), count=3)

    # then 07:00 CEST, i.e. 05:00 UTC, from the next day on
    assert runs == [
        datetime(2026, 3, 29, 5, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 5, 0, tzinfo=UTC),
        datetime(2026, 3, 31, 5, 0, tzinfo=UTC),
    ]


def test_an_interval_runs_on_its_epoch_grid_from_its_start_time() -> None:
    every_five, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    task = schedule("poll", interval=every_five)
    now = datetime(2026, 3, 28, 12, 2, 3, tzinfo=UTC)

    assert next_runs(task, now, count=2) == [
        datetime(2026, 3, 28, 12, 5, tzinfo=UTC),
        datetime(2026, 3, 28, 12, 10, tzinfo=UTC),
    ]
    task.start_time = datetime(2026, 3, 28, 13, 0, tzinfo=UTC)
    assert next_runs(task, now, count=2) == [
        datetime(2026, 3, 28, 13, 0, tzinfo=UTC),
        datetime(2026, 3, 28, 13, 5, tzinfo=UTC),
    ]


def test_the_list_and_the_page_show_the_next_runs(admin_client: Client) -> None:
    # given 07:00 in Berlin from a start time far ahead (so the runs do not depend on today)
    start = datetime(2099, 1, 1, tzinfo=UTC)
    task = schedule("briefing", crontab=berlin_seven(), start_time=start)
    schedule("paused", crontab=berlin_seven(), start_time=start, enabled=False)

    listed = admin_client.get(SCHEDULES).content.decode()
    page = admin_client.get(reverse("admin:events_schedule_change", args=[task.pk]))

    # then 07:00 CET is 06:00 UTC, the admin's time zone
    assert (
        '<td class="field-next_run"><span class="nowrap">2099-01-01</span> '
        '<span class="nowrap">06:00:00 UTC</span></td>'
    ) in listed
    assert '<td class="field-next_run">disabled</td>' in listed
    shown = page.content.decode()
    days = [f"2099-01-0{n}" for n in range(1, 6)]
    expected = "<br>".join(
        f'<span class="nowrap">{day}</span> <span class="nowrap">06:00:00 UTC</span>'
        for day in days
    )
    assert f'<div class="readonly">{expected}</div>' in shown


def test_the_form_speaks_switchyards_words_and_edits_no_shared_crontab(
    admin_client: Client,
) -> None:
    crontab = berlin_seven()
    PeriodicTask.objects.create(
        name="celery.backend_cleanup", task="celery.backend_cleanup", crontab=crontab
    )
    task = schedule("briefing", crontab=crontab)

    page = admin_client.get(reverse("admin:events_schedule_change", args=[task.pk]))

    html = page.content.decode()
    form = page.context["adminform"].form
    assert form.fields["enabled"].help_text == (
        "Untick to pause the schedule: no ticks until it is enabled again."
    )
    assert form.fields["name"].help_text.startswith(
        "Each tick publishes an event of type schedule.NAME."
    )
    # none of django-celery-beat's help texts, nor the name's that lost "<name>" to HTML
    for theirs in ("Set to False", "Datetime that the schedule", "Running count", "schedule.."):
        assert theirs not in html
    assert "<label>Last sent:</label>" in html
    assert "<label>Ticks sent:</label>" in html
    widget = form.fields["crontab"].widget
    assert (widget.can_add_related, widget.can_change_related, widget.can_delete_related) == (
        True,
        False,
        False,
    )
    assert 'id="change_id_crontab"' not in html
    assert 'id="delete_id_crontab"' not in html
