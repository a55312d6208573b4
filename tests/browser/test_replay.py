"""Replay in the browser: from the events list to the replay form, its dry run's figures, the
confirmation (with its checkbox above the threshold), then a real worker makes the copies and
their deliveries. No console error, no CSP violation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from events.models import Delivery, Event, Replay, Source
from tests.conftest import Worker, wait_until

from .conftest import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def cancellations(routes: None) -> list[Event]:
    source = Source.objects.create(slug="crm", kind="api")
    return [
        Event.objects.create(
            source=source,
            external_id=f"orig-{n}",
            type="scenario.reservation.cancelled",
            payload={"guest": f"g{n}"},
            status="processed",
            received_at=T0 + timedelta(hours=n),
        )
        for n in range(3)
    ]


def test_replay_dry_run_then_replay(
    browser: Any,
    live_server: Any,
    superuser: User,
    worker: Worker,
    cancellations: list[Event],
    settings: Any,
) -> None:
    settings.SWITCHYARD_REPLAY_CONFIRM_ABOVE = 1
    session = log_in(browser, live_server.url, superuser)
    page = session.page
    session.visit(live_server.url + reverse("admin:events_event_changelist"))

    # the form, from the events list: the last two of the three events
    page.get_by_role("link", name="Replay events").click()
    page.wait_for_load_state("load")
    page.select_option("#id_source", "crm")
    page.fill("#id_type", "scenario.reservation.*")
    page.fill("#id_received_from", "2025-03-01T13:00:00")
    page.get_by_role("button", name="Dry run").click()
    page.wait_for_load_state("load")

    # the dry run's figures
    summary = page.locator("#replay-summary").inner_text()
    assert "2 events" in summary and "4 deliveries" in summary
    rows = page.locator("#replay-figures tbody tr")
    assert [rows.nth(n).inner_text().split("\t") for n in range(rows.count())] == [
        ["test.notify", "2", "not an agent", "-", "-"],
        ["test.rebook", "2", "not an agent", "-", "-"],
    ]
    assert "no agent with recent runs" in page.locator("#replay-estimate").inner_text()

    # confirm: above the threshold the checkbox must be ticked
    page.get_by_role("button", name="Replay 2 events").click()
    page.wait_for_load_state("load")
    assert "Tick this to replay 2 events." in page.content()
    page.check("#id_confirm")
    page.get_by_role("button", name="Replay 2 events").click()
    page.wait_for_load_state("load")
    assert "started: 2 events" in page.locator("ul.messagelist").inner_text()

    # a worker makes the copies, and their deliveries run
    replay = Replay.objects.get()
    wait_until(
        lambda: Replay.objects.filter(pk=replay.pk, status="done").exists(),
        timeout=60,
        what="the replay to be done",
    )
    copies = Event.objects.filter(replay=replay).order_by("replay_of__received_at")
    assert [copy.replay_of_id for copy in copies] == [e.pk for e in cancellations[1:]]
    wait_until(
        lambda: Delivery.objects.filter(event__in=copies, status="succeeded").count() == 4,
        timeout=60,
        what="the copies' deliveries to succeed",
    )
    assert replay.requested_by == "root"
    assert session.problems == []
