"""The dashboard on the admin's home: the event figures over the last hour and day, events per
minute by status, each figure's link to the list behind it, the number of queries a load takes,
and who sees it. Dead letters, backlog, durations, liveness and the agents' panel:
test_dashboard_panels.py."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events.dashboard.figures import clock, minute_of
from events.models import Delivery, DeliveryStatus, Event, EventStatus, Source

from .helpers import listed

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
# A link around a chart's rect: its href, the rect's class and its tooltip.
LINKED_RECT = re.compile(
    r'<a href="(?P<href>[^"]+)"><rect class="(?P<css>[^"]+)"[^>]*><title>(?P<title>[^<]+)</title>'
)


def event(source: Source, status: str, received_at: datetime) -> Event:
    return Event.objects.create(
        source=source,
        external_id=f"e-{Event.objects.count()}",
        type="shop.order.paid",
        payload={},
        status=status,
        received_at=received_at,
    )


@pytest.fixture
def now() -> datetime:
    return timezone.now()


@pytest.fixture
def events(hmac_source: Source, now: datetime) -> None:
    """Six events in the last hour, two more earlier today, one two days ago."""
    recent = now - timedelta(minutes=30)
    for status in (
        EventStatus.PROCESSED,
        EventStatus.FAILED,
        EventStatus.DEAD_LETTERED,
        EventStatus.RECEIVED,
        EventStatus.PROCESSING,
        EventStatus.IGNORED,
    ):
        event(hmac_source, status, recent)
    event(hmac_source, EventStatus.PROCESSED, now - timedelta(hours=5))
    event(hmac_source, EventStatus.DEAD_LETTERED, now - timedelta(hours=23))
    event(hmac_source, EventStatus.PROCESSED, now - timedelta(days=2))


def board(client: Client) -> dict[str, Any]:
    response = client.get(INDEX)
    assert response.status_code == 200
    return dict(response.context["dashboard"])


def figures(dashboard: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        window.key: {figure.key: figure.count for figure in window.figures}
        for window in dashboard["windows"]
    }


def test_event_figures_count_the_last_hour_and_the_last_day_by_status(
    admin_client: Client, events: None
) -> None:
    assert figures(board(admin_client)) == {
        "hour": {"received": 6, "processed": 1, "failed": 1, "dead_lettered": 1, "waiting": 2},
        "day": {"received": 8, "processed": 2, "failed": 1, "dead_lettered": 2, "waiting": 2},
    }


def test_each_event_figure_links_to_an_events_list_of_that_many_rows(
    admin_client: Client, events: None
) -> None:
    dashboard = board(admin_client)
    shown = {
        (window.key, figure.key): (figure.count, len(listed(admin_client, figure.href)))
        for window in dashboard["windows"]
        for figure in window.figures
    }

    assert {key: listed_rows for key, (_, listed_rows) in shown.items()} == {
        key: count for key, (count, _) in shown.items()
    }
    assert shown[("day", "received")] == (8, 8)


def test_events_per_minute_are_stacked_by_status_and_each_part_links_to_its_events(
    admin_client: Client, hmac_source: Source, now: datetime
) -> None:
    minute = minute_of(now - timedelta(minutes=30))
    for seconds in (10, 20):
        event(hmac_source, EventStatus.PROCESSED, minute + timedelta(seconds=seconds))
    event(hmac_source, EventStatus.DEAD_LETTERED, minute + timedelta(seconds=30))
    event(hmac_source, EventStatus.PROCESSED, minute + timedelta(minutes=1))
    event(hmac_source, EventStatus.PROCESSED, now - timedelta(minutes=61))  # before the chart

    chart = str(board(admin_client)["per_minute"])
    parts = {m["title"]: (m["css"], html.unescape(m["href"])) for m in LINKED_RECT.finditer(chart)}

    next_minute = minute + timedelta(minutes=1)
    assert {title: css for title, (css, _) in parts.items()} == {
        f"{clock(minute)}: 2 processed": "status-processed",
        f"{clock(minute)}: 1 dead-lettered": "status-dead_lettered",
        f"{clock(next_minute)}: 1 processed": "status-processed",
    }
    assert {title: len(listed(admin_client, href)) for title, (_, href) in parts.items()} == {
        f"{clock(minute)}: 2 processed": 2,
        f"{clock(minute)}: 1 dead-lettered": 1,
        f"{clock(next_minute)}: 1 processed": 1,
    }


def test_the_app_list_stays_below_the_dashboard(admin_client: Client, events: None) -> None:
    page = admin_client.get(INDEX).content.decode()

    assert page.index('id="switchyard-dashboard"') < page.index('id="content-main"')
    assert 'class="app-events module' in page
    assert "events/dashboard.js" in page and "events/dashboard.css" in page
    assert 'data-refresh="30"' in page


def test_a_load_takes_the_same_few_queries_however_many_rows(
    admin_client: Client,
    hmac_source: Source,
    events: None,
    now: datetime,
    django_assert_num_queries: Any,
) -> None:
    # the admin's own two (session, user) and recent actions, and the dashboard's nine: event
    # windows, per minute, samples, dead letters, backlog, durations, routed queues, agents,
    # circuit breakers
    with django_assert_num_queries(12):
        board(admin_client)
    for n in range(30):
        made = event(hmac_source, EventStatus.DEAD_LETTERED, now - timedelta(minutes=n))
        Delivery.objects.create(
            event=made, handler=f"test.h{n % 3}", status=DeliveryStatus.DEAD_LETTERED
        )

    with django_assert_num_queries(12):
        board(admin_client)


def test_staff_who_may_not_view_events_get_the_app_list_only(client: Client, events: None) -> None:
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_source"))
    client.force_login(user)

    response = client.get(INDEX)

    assert response.status_code == 200
    assert "dashboard" not in response.context
    assert 'id="switchyard-dashboard"' not in response.content.decode()
    assert "Sources" in response.content.decode()


def test_the_agents_panel_needs_the_agent_usage_permission(client: Client, events: None) -> None:
    user = User.objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_event"))
    client.force_login(user)

    assert board(client)["panels"] == []

    user.user_permissions.add(Permission.objects.get(codename="view_agentusage"))
    client.force_login(User.objects.get(pk=user.pk))  # permissions are cached per user object
    assert [panel.title for panel in board(client)["panels"]] == [
        "Agents: tokens and cost per day, last 7 days"
    ]
