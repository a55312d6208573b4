"""How the pipeline's pages read: compact columns, times to the second, short-id search, and
next attempts only while waiting."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from events.models import Attempt, Delivery, DeliveryStatus, EventStatus, Source

from .helpers import (
    DEAD,
    DELIVERIES,
    EVENTS,
    T0,
    delivery_page,
    event_page,
    listed,
    make_dead,
    make_delivery,
    make_event,
    short,
)

pytestmark = pytest.mark.django_db


def squeeze(html: str) -> str:
    """``html`` without the white space the inline templates put around cell contents."""
    return re.sub(r"\s*(<[^>]*>)\s*", r"\1", html)


# --- Dead-letter list --------------------------------------------------------------------


def test_dead_letter_list_puts_requeue_second_and_keeps_cells_short(
    admin_client: Client, data: dict[str, Any]
) -> None:
    # given a dead letter with a module-qualified error class and a long error
    dead = data["dead_new"]
    long_error = "PermanentError: " + "the guest record is incomplete; " * 10
    Delivery.objects.filter(pk=dead.pk).update(
        error_class="handlers.errors.PermanentError", last_error=long_error
    )

    response = admin_client.get(DEAD)

    html = response.content.decode()
    assert list(response.context["cl"].list_display) == [
        "action_checkbox",
        "delivery",
        "requeue_button",
        "event_link",
        "handler_name",
        "error_kind",
        "short_error",
        "finished",
    ]
    assert (
        '<td class="field-error_kind"><span title="handlers.errors.PermanentError">'
        "PermanentError</span></td>"
    ) in html
    shown = long_error[:79] + "…"
    assert f'<span title="{long_error}">{shown}</span>' in html
    event = data["cancelled"]
    assert (
        f'<td class="field-event_link"><a href="{event_page(event.pk)}" title="{event.pk}">'
        f"{short(event)}</a> scenario.<wbr>reservation.<wbr>cancelled</td>"
    ) in html
    assert '<td class="field-handler_name">test.<wbr>rebook</td>' in html
    assert (
        '<td class="field-finished"><span class="nowrap">2025-03-01</span> '
        '<span class="nowrap">12:20:00 UTC</span></td>'
    ) in html
    # A short error is shown as it is, without a tooltip.
    assert '<td class="field-short_error">ValueError: guest record is incomplete</td>' in html


# --- Times -------------------------------------------------------------------------------


def test_times_show_seconds_and_the_zone(admin_client: Client, data: dict[str, Any]) -> None:
    events = admin_client.get(EVENTS).content.decode()
    page = admin_client.get(delivery_page(data["dead_new"])).content.decode()

    assert '<td class="field-received_at nowrap">2025-03-01 12:01:00 UTC</td>' in events
    assert '<div class="readonly">2025-03-01 12:20:00 UTC</div>' in page
    assert squeeze(
        '<td class="field-started"><p><span class="nowrap">2025-03-01</span> '
        '<span class="nowrap">12:00:00 UTC</span></p></td>'
    ) in squeeze(page)


def test_date_hierarchy_drills_down_to_a_day(admin_client: Client, data: dict[str, Any]) -> None:
    year = admin_client.get(f"{EVENTS}?received_at__year=2025")
    day = listed(
        admin_client, f"{EVENTS}?received_at__year=2025&received_at__month=3&received_at__day=1"
    )

    assert 'href="?received_at__month=3&amp;received_at__year=2025">March 2025</a>' in (
        year.content.decode()
    )
    assert [e.external_id for e in day] == ["ord_3", "ord_2", "ord_1"]


# --- Attempts inline ---------------------------------------------------------------------


def test_attempts_show_readable_delays_and_durations(
    admin_client: Client, data: dict[str, Any]
) -> None:
    dead = data["dead_new"]
    Attempt.objects.filter(delivery=dead, number=1).update(
        retry_delay=5.4403578902522725, duration_ms=123
    )

    html = squeeze(admin_client.get(delivery_page(dead)).content.decode())

    assert '<td class="field-retry_in"><p>5.4 s</p></td>' in html
    assert '<td class="field-retry_in"><p>4.0 s</p></td>' in html
    assert '<td class="field-retry_in"><p>-</p></td>' in html
    assert '<td class="field-duration"><p>123 ms</p></td>' in html
    assert '<td class="field-duration"><p>1000 ms</p></td>' in html


def test_pages_link_the_static_stylesheet_and_carry_no_inline_style(
    admin_client: Client, data: dict[str, Any]
) -> None:
    # (tests/browser/test_pages_fit.py checks what the stylesheet does)
    for url in (delivery_page(data["dead_new"]), event_page(data["cancelled"].pk)):
        html = admin_client.get(url).content.decode()
        assert '<link rel="stylesheet" href="/static/switchyard/admin.css">' in html
        assert "<style" not in html
    stylesheet = Path(str(finders.find("switchyard/admin.css"))).read_text()
    assert ".inline-group .tabular tr.has_original td.original p { display: none; }" in stylesheet


# --- Next attempt ------------------------------------------------------------------------


def test_next_attempt_shows_only_while_a_delivery_waits(
    admin_client: Client, data: dict[str, Any]
) -> None:
    # given a retrying delivery next to finished ones
    retrying = make_delivery(
        data["paid"],
        "test.notify",
        DeliveryStatus.RETRYING,
        next_attempt_at=T0 + timedelta(minutes=30, seconds=5),
    )
    Delivery.objects.exclude(pk=retrying.pk).update(next_attempt_at=T0)

    rows = admin_client.get(DELIVERIES).content.decode()
    inline = squeeze(admin_client.get(event_page(data["paid"].pk)).content.decode())
    waiting = admin_client.get(delivery_page(retrying)).content.decode()
    finished = admin_client.get(delivery_page(data["ok"])).content.decode()

    time = '<span class="nowrap">2025-03-01</span> <span class="nowrap">12:30:05 UTC</span>'
    assert rows.count(f'<td class="field-next_attempt">{time}</td>') == 1
    assert rows.count('<td class="field-next_attempt">-</td>') == 3
    assert squeeze(f'<td class="field-next_attempt"><p>{time}</p></td>') in inline
    assert '<td class="field-next_attempt"><p>-</p></td>' in inline
    assert f'<div class="readonly">{time}</div>' in waiting
    assert "12:00:00 UTC" not in finished


# --- Short-id search ---------------------------------------------------------------------


@pytest.fixture
def twins(hmac_source: Source, routes: None) -> dict[str, Any]:
    """Two events whose ids share their first seven hex digits, each with a dead letter."""
    first = make_event(
        hmac_source,
        "twin_1",
        "scenario.reservation.cancelled",
        EventStatus.DEAD_LETTERED,
        1,
        id=uuid.UUID("517fee74-1111-4111-8111-111111111111"),
    )
    second = make_event(
        hmac_source,
        "twin_2",
        "scenario.reservation.cancelled",
        EventStatus.DEAD_LETTERED,
        2,
        id=uuid.UUID("517fee75-2222-4222-8222-222222222222"),
    )
    return {
        "first": first,
        "second": second,
        "first_dead": make_dead(first, "test.notify", 10),
        "second_dead": make_dead(second, "test.notify", 20),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("517fee74", ["twin_1"]),
        ("517FEE74", ["twin_1"]),
        ("517fee74-1111", ["twin_1"]),
        ("517fee75", ["twin_2"]),
        # Shorter than the lists' short id: not taken for an id.
        ("517fee7", []),
        ("517fee76", []),
        (" 517fee74 ", ["twin_1"]),
    ],
)
def test_event_search_by_short_id(
    admin_client: Client, twins: dict[str, Any], term: str, expected: list[str]
) -> None:
    rows = listed(admin_client, f"{EVENTS}?q={term}")

    assert [e.external_id for e in rows] == expected


@pytest.mark.parametrize("url", [DELIVERIES, DEAD])
def test_delivery_lists_search_by_short_event_id(
    admin_client: Client, twins: dict[str, Any], url: str
) -> None:
    by_short_id = listed(admin_client, f"{url}?q=517fee75")
    by_delivery_id = listed(admin_client, f"{url}?q={twins['first_dead'].pk}")

    assert [d.pk for d in by_short_id] == [twins["second_dead"].pk]
    assert [d.pk for d in by_delivery_id] == [twins["first_dead"].pk]


def test_delivery_search_by_any_part_of_the_handler(
    admin_client: Client, data: dict[str, Any]
) -> None:
    by_prefix = listed(admin_client, f"{DELIVERIES}?q=test.re")
    by_other = listed(admin_client, f"{DELIVERIES}?q=test.no")
    by_middle = listed(admin_client, f"{DELIVERIES}?q=REBOO")
    # Two characters have no trigram to look up: ids only.
    by_two_letters = listed(admin_client, f"{DELIVERIES}?q=re")

    assert sorted(d.pk for d in by_prefix) == sorted([data["ok"].pk, data["dead_new"].pk])
    assert [d.pk for d in by_other] == [data["dead_old"].pk]
    assert sorted(d.pk for d in by_middle) == sorted([data["ok"].pk, data["dead_new"].pk])
    assert by_two_letters == []
