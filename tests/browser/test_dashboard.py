"""The dashboard in the browser: logging in lands on it, its figures are the database's counts,
a figure's link leads to a list of that many rows, it reloads itself, and none of it breaks
the Content-Security-Policy (no violation, no console error)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from events import dashboard
from events.models import Delivery, DeliveryStatus, Event, EventStatus, Source

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

STATUSES = {
    "processed": [EventStatus.PROCESSED],
    "failed": [EventStatus.FAILED],
    "dead_lettered": [EventStatus.DEAD_LETTERED],
    "waiting": [EventStatus.RECEIVED, EventStatus.PROCESSING],
}


@pytest.fixture
def history(routes: None, monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Events of the last day in every status, some with dead letters; none near a window's
    edge."""
    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: None)  # no worker runs here
    source = Source.objects.create(slug="browser-board", kind="api")
    now = timezone.now()
    ages = (timedelta(minutes=20), timedelta(minutes=40), timedelta(hours=3), timedelta(hours=20))
    statuses = [
        EventStatus.PROCESSED,
        EventStatus.PROCESSED,
        EventStatus.FAILED,
        EventStatus.DEAD_LETTERED,
        EventStatus.RECEIVED,
        EventStatus.PROCESSING,
        EventStatus.IGNORED,
    ]
    for n, status in enumerate(statuses * 2):
        event = Event.objects.create(
            source=source,
            external_id=f"board-{n}",
            type="board.test",
            payload={},
            status=status,
            received_at=now - ages[n % len(ages)],
        )
        if status == EventStatus.DEAD_LETTERED:
            Delivery.objects.create(
                event=event,
                handler="test.rebook",
                status=DeliveryStatus.DEAD_LETTERED,
                finished_at=now - ages[n % len(ages)],
            )
    Event.objects.create(
        source=source,
        external_id="old",
        type="board.test",
        payload={},
        status="processed",
        received_at=now - timedelta(days=3),
    )
    return now


def counted(since: datetime, statuses: list[str] | None) -> int:
    events = Event.objects.filter(received_at__gte=since)
    return (events.filter(status__in=statuses) if statuses else events).count()


def rows_listed(session: Any) -> int:
    return int(session.page.locator("#result_list tbody tr").count())


def test_the_dashboards_figures_match_the_database_and_link_to_lists_of_as_many_rows(
    browser: Any, live_server: Any, superuser: User, history: datetime
) -> None:
    # when an operator logs in, the dashboard is the home page
    session = log_in(browser, live_server.url, superuser)
    page = session.page
    shown = {
        figure.get_attribute("id"): int(figure.inner_text())
        for figure in page.locator("#dashboard-events a.figure").all()
    }

    # then its figures are the database's counts
    hour, day = history - timedelta(hours=1), history - timedelta(days=1)
    expected = {}
    for window, since in (("hour", hour), ("day", day)):
        expected[f"figure-{window}-received"] = counted(since, None)
        for key, statuses in STATUSES.items():
            expected[f"figure-{window}-{key}"] = counted(since, statuses)
    assert shown == expected
    assert shown["figure-day-received"] == 14
    dead = Delivery.objects.filter(status=DeliveryStatus.DEAD_LETTERED).count()
    assert int(page.locator("#figure-dead-letters").inner_text()) == dead == 2

    # and each figure leads to a list of that many rows
    links = {
        "figure-day-waiting": shown["figure-day-waiting"],
        "figure-hour-processed": shown["figure-hour-processed"],
        "figure-dead-letters": dead,
    }
    listed = {}
    for figure in links:
        session.visit(live_server.url + "/admin/")
        page.locator(f"#{figure}").click()
        page.wait_for_load_state("load")
        listed[figure] = rows_listed(session)
    assert listed == links

    # the app list is still there, below
    session.visit(live_server.url + "/admin/")
    assert page.locator("#content-main .app-events").count() == 1
    assert session.problems == []


def test_the_dashboard_reloads_itself(
    browser: Any,
    live_server: Any,
    superuser: User,
    history: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dashboard, "REFRESH_SECONDS", 1)
    session = log_in(browser, live_server.url, superuser)
    assert session.page.locator("#figure-hour-failed").inner_text() == "1"

    # a figure changes in the database; the page shows it after its next reload
    Event.objects.filter(status=EventStatus.FAILED).update(status=EventStatus.PROCESSED)
    with session.page.expect_navigation(timeout=5000):
        pass

    assert session.page.locator("#figure-hour-failed").inner_text() == "0"
    assert session.problems == []
