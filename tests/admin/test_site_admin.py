"""The site as a whole (index order, the Celery apps' admins) and the configuration pages'
layout (routes list, source endpoint and fields)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import formats
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from django_celery_results.models import GroupResult, TaskResult

from events import conf
from events.models import Route, Source

pytestmark = pytest.mark.django_db


# --- Index -------------------------------------------------------------------------------


def test_index_lists_the_events_app_first_then_the_agents_in_working_order(
    admin_client: Client,
) -> None:
    response = admin_client.get(reverse("admin:index"))

    apps = response.context["app_list"]
    assert [app["app_label"] for app in apps[:2]] == ["events", "handlers"]
    assert [m["object_name"] for m in apps[1]["models"]] == [
        "Approval",
        "AgentUsage",
        "AgentBudget",
        "AgentConfig",
    ]
    assert [m["object_name"] for m in apps[0]["models"]] == [
        "Event",
        "Delivery",
        "DeadLetter",
        "Replay",
        "HandlerState",
        "Source",
        "Route",
        "Resource",
        "Schedule",
        "ScheduleTick",
        "ApiToken",
        "RejectedRequest",
    ]
    beat = next(app for app in apps if app["app_label"] == "django_celery_beat")
    assert sorted(m["object_name"] for m in beat["models"]) == [
        "CrontabSchedule",
        "IntervalSchedule",
        "PeriodicTask",
    ]


def test_app_page_and_sidebar_use_the_same_order(admin_client: Client) -> None:
    page = admin_client.get(reverse("admin:app_list", args=["events"]))

    assert [m["object_name"] for m in page.context["app_list"][0]["models"]] == [
        "Event",
        "Delivery",
        "DeadLetter",
        "Replay",
        "HandlerState",
        "Source",
        "Route",
        "Resource",
        "Schedule",
        "ScheduleTick",
        "ApiToken",
        "RejectedRequest",
    ]
    assert page.context["available_apps"][0]["app_label"] == "events"


def test_unused_schedules_are_not_registered() -> None:
    assert not admin.site.is_registered(ClockedSchedule)
    assert not admin.site.is_registered(SolarSchedule)
    with pytest.raises(NoReverseMatch):
        reverse("admin:django_celery_beat_clockedschedule_changelist")


def test_a_shared_crontab_is_neither_changed_nor_deleted_in_the_admin(
    admin_client: Client,
) -> None:
    # given the result cleanup's crontab
    crontab = CrontabSchedule.objects.create(minute="0", hour="4")
    PeriodicTask.objects.create(
        name="celery.backend_cleanup", task="celery.backend_cleanup", crontab=crontab
    )
    change = reverse("admin:django_celery_beat_crontabschedule_change", args=[crontab.pk])
    delete = reverse("admin:django_celery_beat_crontabschedule_delete", args=[crontab.pk])

    # when someone posts a change and a delete
    changed = admin_client.post(change, {"minute": "*", "hour": "*", "day_of_month": "*",
                                         "month_of_year": "*", "day_of_week": "*",
                                         "timezone": "UTC"})  # fmt: skip
    deleted = admin_client.post(delete, {"post": "yes"})

    # then both are refused and the row is as it was; a new one may still be added
    assert (changed.status_code, deleted.status_code) == (403, 403)
    crontab.refresh_from_db()
    assert (crontab.minute, crontab.hour) == ("0", "4")
    assert PeriodicTask.objects.filter(crontab=crontab).count() == 1
    added = reverse("admin:django_celery_beat_intervalschedule_add")
    assert admin_client.get(added).status_code == 200


@pytest.mark.django_db
def test_periodic_tasks_are_shown_but_edited_only_as_schedules(admin_client: Client) -> None:
    # given the sweeper's periodic task, as beat's DatabaseScheduler stores it
    sweeper = PeriodicTask.objects.create(
        name="switchyard-sweeper",
        task="events.sweep",
        interval=IntervalSchedule.objects.create(every=15, period="seconds"),
    )
    page = reverse("admin:django_celery_beat_periodictask_change", args=[sweeper.pk])

    shown = admin_client.get(page)
    posted = admin_client.post(page, {"name": "x", "task": "events.sweep", "enabled": ""})
    listing = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist"))

    assert shown.status_code == 200
    assert 'type="submit"' not in shown.content.decode().split('id="content-main"')[1]
    assert posted.status_code == 403
    assert PeriodicTask.objects.get(pk=sweeper.pk).name == "switchyard-sweeper"
    assert "switchyard-sweeper" in listing.content.decode()
    assert admin_client.get(reverse("admin:django_celery_beat_periodictask_add")).status_code == 403


@pytest.fixture
def task_result(db: None) -> TaskResult:
    return TaskResult.objects.create(task_id="t-1", task_name="events.deliver", status="SUCCESS")


def test_task_results_are_read_only(admin_client: Client, task_result: TaskResult) -> None:
    change = reverse("admin:django_celery_results_taskresult_change", args=[task_result.pk])

    answers = [
        admin_client.get(reverse("admin:django_celery_results_taskresult_add")).status_code,
        admin_client.get(reverse("admin:django_celery_results_groupresult_add")).status_code,
        admin_client.get(change).status_code,
        admin_client.post(change, {"task_id": "t-2", "status": "FAILURE"}).status_code,
        admin_client.get(reverse("admin:django_celery_results_taskresult_changelist")).status_code,
        admin_client.get(reverse("admin:django_celery_results_groupresult_changelist")).status_code,
    ]

    assert answers == [403, 403, 200, 403, 200, 200]
    task_result.refresh_from_db()
    assert (task_result.task_id, task_result.status) == ("t-1", "SUCCESS")
    assert 'name="_save"' not in admin_client.get(change).content.decode()
    assert admin.site.is_registered(GroupResult)


# --- Formats -----------------------------------------------------------------------------


def test_date_formats_have_seconds_and_the_zone() -> None:
    assert formats.get_format("DATETIME_FORMAT") == "Y-m-d H:i:s T"
    assert formats.get_format("SHORT_DATETIME_FORMAT") == "Y-m-d H:i:s T"
    assert formats.get_format("TIME_FORMAT") == "H:i:s"
    assert formats.get_format("DATE_FORMAT") == "Y-m-d"
    # Input stays Django's.
    assert "%Y-%m-%d %H:%M:%S" in formats.get_format("DATETIME_INPUT_FORMATS")


# --- Routes ------------------------------------------------------------------------------


def test_route_list_links_the_event_type_and_leaves_out_the_name(
    admin_client: Client, db: None
) -> None:
    route = Route.objects.create(
        name="rebook guests whose reservation was cancelled by the hotel",
        event_type="scenario.reservation.*",
        handler="test.rebook",
    )

    response = admin_client.get(reverse("admin:events_route_changelist"))

    html = response.content.decode()
    assert list(response.context["cl"].list_display) == [
        "action_checkbox",
        "pattern",
        "handler_name",
        "sources",
        "enabled",
        "managed",
        "max_attempts",
        "time_limit",
        "queue",
        "rate",
    ]
    link = reverse("admin:events_route_change", args=[route.pk])
    assert (
        f'<th class="field-pattern"><a href="{link}">scenario.<wbr>reservation.<wbr>*</a></th>'
    ) in html
    assert '<td class="field-handler_name">test.<wbr>rebook</td>' in html
    assert "field-name" not in html


def test_route_queue_says_a_worker_must_consume_it(admin_client: Client, db: None) -> None:
    response = admin_client.get(reverse("admin:events_route_add"))

    field = response.context["adminform"].form.fields["queue"]
    assert field.help_text == (
        "The Celery queue this route's deliveries are sent to. A worker must consume it "
        "(celery worker -Q default,maintenance,<queue>), or its deliveries wait and the "
        "sweeper keeps re-sending them."
    )
    assert not hasattr(field, "choices")


# --- Sources -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "endpoint"),
    [("hmac", f"<code>{conf.public_url()}/hooks/shop</code>"), ("api", "-")],
)
def test_source_page_shows_the_full_endpoint_url(
    admin_client: Client, db: None, kind: str, endpoint: str
) -> None:
    source = Source.objects.create(slug="shop", kind=kind, secrets=["s" * 20])

    response = admin_client.get(reverse("admin:events_source_change", args=[source.pk]))

    assert f'<div class="readonly">{endpoint}</div>' in response.content.decode()


def test_source_form_has_a_wide_description_and_explains_settings(
    admin_client: Client, db: None
) -> None:
    response = admin_client.get(reverse("admin:events_source_add"))

    form: Any = response.context["adminform"].form
    html = response.content.decode()
    assert 'class="vLargeTextField"' in str(form["description"])
    assert form.fields["settings"].help_text == (
        "A JSON object of options for this source's kind, "
        'e.g. {"header": "X-Signature"}. Leave {} when the kind takes none.'
    )
    assert "Leave {} when the kind takes none." in html
