"""Edits in the admin reach a running beat without a restart: bulk actions (which change rows
with UPDATE, so they must bump PeriodicTasks.last_update themselves) and the change form."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from events.models import TickStatus
from tests.conftest import Beat, Worker, wait_until

from .conftest import count, events_of, make_schedule, ticks

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHANGELIST = reverse("admin:events_schedule_changelist")


def bulk(client: Client, action: str, *tasks: PeriodicTask) -> list[str]:
    response = client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [task.pk for task in tasks]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def test_bulk_actions_and_form_edits_take_effect_in_a_running_beat(
    roomy_worker: Worker, fast_beat: Callable[[str], Beat], admin_client: Client
) -> None:
    # given a running beat with one enabled and one disabled schedule, every second
    first = make_schedule("first", every=1)
    second = make_schedule("second", every=1, enabled=False, kwargs={"version": 1})
    beat = fast_beat("live-edit")
    wait_until(lambda: count("first") >= 1, timeout=20, what=f"'first' to tick:\n{beat.log()}")

    # when the operator disables one and enables the other with the bulk actions
    assert bulk(admin_client, "disable_schedules", first) == ["1 schedule(s) disabled."]
    assert bulk(admin_client, "enable_schedules", second) == ["1 schedule(s) enabled."]

    # then beat picks both up: 'second' ticks, and 'first' sent nothing after that
    wait_until(lambda: count("second") >= 2, timeout=20, what=f"'second' to tick:\n{beat.log()}")
    first_sent = [tick.sent_at for tick in ticks("first") if tick.sent_at]
    second_sent = [tick.sent_at for tick in ticks("second") if tick.sent_at]
    assert max(first_sent) < min(second_sent)

    # when the operator changes the arguments in the change form
    second.refresh_from_db()
    response = admin_client.post(
        reverse("admin:events_schedule_change", args=[second.pk]),
        {
            "name": "second",
            "enabled": "on",
            "description": "",
            "interval": second.interval_id,
            "crontab": "",
            "start_time_0": "",
            "start_time_1": "",
            "kwargs": json.dumps({"version": 2}),
            "expire_seconds": "",
            "queue": "",
            "overlap": "skip",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    # then the next ticks carry the new payload
    wait_until(
        lambda: any(event.payload == {"version": 2} for event in events_of("second")),
        timeout=20,
        what=f"a tick with the edited arguments:\n{beat.log()}",
    )
    beat.stop()
    # (in the order beat sent them)
    payloads = [tick.event.payload for tick in ticks("second", TickStatus.PUBLISHED)]
    first_new = payloads.index({"version": 2})
    assert payloads[:first_new] == [{"version": 1}] * first_new
    assert set(map(json.dumps, payloads[first_new:])) == {json.dumps({"version": 2})}
    assert count("first", TickStatus.DUPLICATE) + count("second", TickStatus.DUPLICATE) == 0
