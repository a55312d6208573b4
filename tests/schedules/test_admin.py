"""The admin's Schedules and Schedule ticks pages: they render, the form refuses bad input,
the actions say what they did, and every change that skips PeriodicTask.save() still tells
beat (PeriodicTasks.last_update)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from events.models import OverlapPolicy, Route, SchedulePolicy, TickStatus
from events.schedules.ticks import Tick, handle_tick
from tests.conftest import RedisServer

from .conftest import make_schedule

pytestmark = pytest.mark.django_db

SCHEDULES = reverse("admin:events_schedule_changelist")
ADD = reverse("admin:events_schedule_add")
TICKS = reverse("admin:events_scheduletick_changelist")
PARKED = "schedules-admin-test"


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def form_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "the form was accepted"
    return {k: list(v) for k, v in response.context["adminform"].form.errors.items()}


def schedule_form(**changes: Any) -> dict[str, Any]:
    interval, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    return {
        "name": "nightly-report",
        "enabled": "on",
        "description": "",
        "crontab": "",
        "interval": interval.pk,
        "start_time_0": "",
        "start_time_1": "",
        "kwargs": '{"report": "sales"}',
        "expire_seconds": "120",
        "queue": "",
        "overlap": "allow",
        **changes,
    }


def action(client: Client, name: str, *tasks: PeriodicTask) -> list[str]:
    response = client.post(
        SCHEDULES, {"action": name, "_selected_action": [t.pk for t in tasks]}, follow=True
    )
    assert response.status_code == 200
    return messages_of(response)


@pytest.fixture
def last_update() -> Any:
    PeriodicTasks.update_changed()
    return PeriodicTasks.last_change


def test_the_list_shows_schedules_only_with_their_policy_and_last_tick(
    admin_client: Client,
) -> None:
    nightly = make_schedule("nightly", every=60, overlap=OverlapPolicy.ALLOW, expire_seconds=30)
    handle_tick(Tick(name="nightly", due_at=datetime.now(UTC)))
    PeriodicTask.objects.create(name="housekeeping", task="events.sweep", interval=nightly.interval)

    response = admin_client.get(SCHEDULES)

    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert [(r.name, r.last_tick_status) for r in rows] == [("nightly", "published")]
    html = response.content.decode()
    assert "every 60 seconds" in html and "30 s" in html and ">allow<" in html
    assert "housekeeping" not in html
    filtered = admin_client.get(SCHEDULES, {"overlap": "skip"})
    assert list(filtered.context["cl"].result_list) == []


def test_adding_a_schedule_makes_a_beat_task_with_its_policy(
    admin_client: Client, last_update: Any
) -> None:
    before = last_update()

    response = admin_client.post(ADD, schedule_form())

    assert response.status_code == 302, form_errors(response)
    task = PeriodicTask.objects.get(name="nightly-report")
    assert (task.task, json.loads(task.kwargs), task.expire_seconds, task.enabled) == (
        "events.schedule",
        {"report": "sales"},
        120,
        True,
    )
    assert SchedulePolicy.objects.get(periodic_task=task).overlap == OverlapPolicy.ALLOW
    assert last_update() > before
    assert admin_client.get(ADD).status_code == 200


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"name": "nightly report"}, {"name"}),
        ({"name": "x@y"}, {"name"}),
        ({"kwargs": "{not json"}, {"kwargs"}),
        ({"kwargs": "[1, 2]"}, {"kwargs"}),
        ({"kwargs": '{"a": NaN}'}, {"kwargs"}),
        ({"kwargs": '{"a": "\\u0000"}'}, {"kwargs"}),
        ({"expire_seconds": "0"}, {"expire_seconds"}),
        ({"interval": ""}, {"__all__"}),
        ({"crontab": "CRONTAB"}, {"__all__"}),
    ],
)
def test_the_form_refuses_bad_input_and_stores_nothing(
    admin_client: Client, changes: dict[str, str], errors: set[str]
) -> None:
    if changes.get("crontab") == "CRONTAB":
        changes = {"crontab": str(CrontabSchedule.objects.create(minute="0", hour="7").pk)}

    response = admin_client.post(ADD, schedule_form(**changes))

    assert set(form_errors(response)) == errors
    assert not PeriodicTask.objects.filter(task="events.schedule").exists()


def test_neither_crontab_nor_interval_is_one_clear_error(admin_client: Client) -> None:
    response = admin_client.post(ADD, schedule_form(interval=""))

    assert form_errors(response) == {"__all__": ["Set a crontab or an interval."]}


def test_the_change_page_shows_routes_recent_ticks_and_a_route_link(admin_client: Client) -> None:
    task = make_schedule("nightly", every=60)
    Route.objects.create(name="n", event_type="schedule.nightly", handler="test.chaos")
    due = datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    handle_tick(Tick(name="nightly", due_at=due), now=due)
    handle_tick(Tick(name="nightly", due_at=due), now=due)

    response = admin_client.get(reverse("admin:events_schedule_change", args=[task.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "<code>schedule.nightly</code>" in html
    assert ">test.chaos</a>" in html
    assert "/admin/events/route/add/?name=nightly+schedule&amp;event_type=schedule.nightly" in html
    assert html.count("<td>published</td>") == 1 and html.count("<td>duplicate</td>") == 1
    ticks = admin_client.get(TICKS, {"name": "nightly", "status": TickStatus.DUPLICATE})
    assert [t.status for t in ticks.context["cl"].result_list] == ["duplicate"]


def test_enable_and_disable_tell_beat_and_are_safe_to_repeat(
    admin_client: Client, last_update: Any
) -> None:
    on = make_schedule("on", every=60, last_run_at=datetime.now(UTC) - timedelta(hours=1))
    off = make_schedule("off", every=60, enabled=False)
    before = last_update()

    messages = action(admin_client, "disable_schedules", on, off)
    after_disable = last_update()
    again = action(admin_client, "disable_schedules", on, off)
    enabled = action(admin_client, "enable_schedules", on)

    assert messages == ["1 schedule(s) disabled. 1 already were."]
    assert again == ["0 schedule(s) disabled. 2 already were."]
    assert enabled == ["1 schedule(s) enabled."]
    assert before < after_disable < last_update()
    on.refresh_from_db()
    # Re-enabled, it counts from now: no catch-up tick for the hour it was off.
    assert (on.enabled, on.last_run_at) == (True, None)


def test_overlap_actions_set_the_policy_and_report(admin_client: Client) -> None:
    a = make_schedule("a", every=60)
    b = make_schedule("b", every=60, overlap=OverlapPolicy.ALLOW)
    SchedulePolicy.objects.filter(periodic_task=a).delete()  # no row: skip

    assert action(admin_client, "overlap_allow", a, b) == [
        "1 schedule(s) set to overlap allow. 1 already were."
    ]
    assert action(admin_client, "overlap_skip", a, b) == ["2 schedule(s) set to overlap skip."]
    assert set(SchedulePolicy.objects.values_list("overlap", flat=True)) == {"skip"}


def test_bulk_delete_tells_beat(admin_client: Client, last_update: Any) -> None:
    a = make_schedule("a", every=60)
    before = last_update()

    response = admin_client.post(
        SCHEDULES, {"action": "delete_selected", "_selected_action": [a.pk], "post": "yes"}
    )

    assert response.status_code == 302
    assert not PeriodicTask.objects.filter(pk=a.pk).exists()
    assert last_update() > before


def test_run_now_sends_one_keyed_tick_per_schedule(
    admin_client: Client, redis_server: RedisServer
) -> None:
    task = make_schedule("nightly", every=60, kwargs={"report": "sales"}, queue=PARKED)
    client = redis_server.client()
    client.delete(PARKED)

    messages = action(admin_client, "run_now", task)

    assert messages == ["Sent a tick now for nightly. Schedule ticks shows what became of it."]
    raw = client.lpop(PARKED)
    client.delete(PARKED)
    message = json.loads(raw)
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    headers = message["headers"]
    assert (headers["task"], headers["periodic_task_name"], args, kwargs) == (
        "events.schedule",
        "nightly",
        [],
        {"report": "sales"},
    )
    assert datetime.fromisoformat(headers["switchyard_due"]) <= datetime.now(UTC)


def test_tick_pages_render_read_only(admin_client: Client) -> None:
    make_schedule("nightly", every=60)
    row = handle_tick(Tick(name="nightly", due_at=datetime.now(UTC)))

    listing = admin_client.get(TICKS)
    detail = admin_client.get(reverse("admin:events_scheduletick_change", args=[row.pk]))

    assert (listing.status_code, detail.status_code) == (200, 200)
    assert 'name="_save"' not in detail.content.decode()
    assert admin_client.get(reverse("admin:events_scheduletick_add")).status_code == 403


def test_the_index_lists_schedules_after_routes_and_their_resources(admin_client: Client) -> None:
    apps = admin_client.get(reverse("admin:index")).context["app_list"]
    names = [m["object_name"] for m in apps[0]["models"]]

    assert names[names.index("Route") + 1 : names.index("Route") + 4] == [
        "Resource",
        "Schedule",
        "ScheduleTick",
    ]
