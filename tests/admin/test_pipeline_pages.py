"""How the pipeline's pages read: compact columns, times to the second, short-id search,
next attempts only while waiting, Requeue on the detail pages and what its message says."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from events.models import Attempt, Delivery, DeliveryStatus, EventStatus, Source

from .helpers import (
    DEAD,
    DELIVERIES,
    EVENTS,
    T0,
    Jobs,
    assert_requeued,
    assert_still_dead,
    listed,
    make_dead,
    make_delivery,
    make_event,
    messages_of,
    requeue_url,
    short,
)

pytestmark = pytest.mark.django_db


def squeeze(html: str) -> str:
    """``html`` without the white space the inline templates put around cell contents."""
    return re.sub(r"\s*(<[^>]*>)\s*", r"\1", html)


def delivery_page(delivery: Delivery) -> str:
    return reverse("admin:events_delivery_change", args=[delivery.pk])


def event_page(pk: Any) -> str:
    return reverse("admin:events_event_change", args=[pk])


def event_requeue_url(pk: Any) -> str:
    return reverse("admin:events_event_requeue", args=[pk])


def has_post_tool(html: str, url: str, label: str) -> bool:
    """Whether the page's object tools hold a button posting to ``url`` with a CSRF token."""
    form = (
        f'<form method="post" action="{url}" class="post-tool">'
        '<input type="hidden" name="csrfmiddlewaretoken"'
    )
    return form in html and f'<button type="submit">{label}</button>' in html


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


def test_inline_rows_hide_their_caption_and_wrap_tracebacks(
    admin_client: Client, data: dict[str, Any]
) -> None:
    for url in (delivery_page(data["dead_new"]), event_page(data["cancelled"].pk)):
        html = admin_client.get(url).content.decode()
        assert ".inline-group .tabular tr.has_original td.original p { display: none; }" in html
        assert "white-space: pre-wrap;" in html
        assert "#changelist #result_list thead th, .inline-group .tabular thead th" in html


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


def test_delivery_search_by_handler_prefix(admin_client: Client, data: dict[str, Any]) -> None:
    by_prefix = listed(admin_client, f"{DELIVERIES}?q=test.re")
    by_other = listed(admin_client, f"{DELIVERIES}?q=test.no")
    by_middle = listed(admin_client, f"{DELIVERIES}?q=rebook")

    assert sorted(d.pk for d in by_prefix) == sorted([data["ok"].pk, data["dead_new"].pk])
    assert [d.pk for d in by_other] == [data["dead_old"].pk]
    assert by_middle == []


# --- Requeue from the detail pages -------------------------------------------------------


def test_delivery_page_offers_requeue_only_for_a_dead_letter(
    admin_client: Client, data: dict[str, Any]
) -> None:
    dead, ok = data["dead_new"], data["ok"]
    dead_letter_page = reverse("admin:events_deadletter_change", args=[dead.pk])

    pages = {
        url: admin_client.get(url).content.decode()
        for url in (delivery_page(dead), dead_letter_page)
    }
    finished = admin_client.get(delivery_page(ok)).content.decode()

    for html in pages.values():
        assert has_post_tool(html, requeue_url(dead.pk), "Requeue")
    assert 'class="post-tool"' not in finished


def test_requeue_from_the_delivery_page(
    admin_client: Client,
    data: dict[str, Any],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    dead = data["dead_new"]
    page = f"http://testserver{delivery_page(dead)}"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(requeue_url(dead.pk), headers={"referer": page}, follow=True)

    assert response.redirect_chain == [(delivery_page(dead), 302)]
    assert messages_of(response) == [
        f"Requeued delivery {dead.pk} (test.rebook for event {short(dead.event)})."
    ]
    assert_requeued(dead)
    assert enqueued == [[(dead.pk, "default", 60)]]
    assert 'class="post-tool"' not in response.content.decode()


def test_requeue_from_the_dead_letter_page_lands_on_the_delivery(
    admin_client: Client, data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    dead = data["dead_old"]
    page = reverse("admin:events_deadletter_change", args=[dead.pk])

    response = admin_client.post(
        requeue_url(dead.pk), headers={"referer": f"http://testserver{page}"}
    )

    assert (response.status_code, response["Location"]) == (302, delivery_page(dead))


def test_event_page_offers_requeue_of_its_dead_letters(
    admin_client: Client, data: dict[str, Any]
) -> None:
    cancelled = admin_client.get(event_page(data["cancelled"].pk)).content.decode()
    paid = admin_client.get(event_page(data["paid"].pk)).content.decode()
    Delivery.objects.filter(pk=data["dead_old"].pk).update(status=DeliveryStatus.SUCCEEDED)
    one_left = admin_client.get(event_page(data["cancelled"].pk)).content.decode()

    url = event_requeue_url(data["cancelled"].pk)
    assert has_post_tool(cancelled, url, "Requeue its 2 dead letters")
    assert has_post_tool(one_left, url, "Requeue its dead letter")
    assert 'class="post-tool"' not in paid


def test_requeue_from_the_event_page_requeues_all_its_dead_letters(
    admin_client: Client,
    data: dict[str, Any],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    event = data["cancelled"]

    with django_capture_on_commit_callbacks(execute=True):
        first = admin_client.post(event_requeue_url(event.pk), follow=True)
    with django_capture_on_commit_callbacks(execute=True):
        second = admin_client.post(event_requeue_url(event.pk), follow=True)

    assert first.redirect_chain == [(event_page(event.pk), 302)]
    assert messages_of(first) == ["Requeued 2 deliveries."]
    assert messages_of(second) == ["Nothing was requeued."]
    assert_requeued(data["dead_new"])
    assert_requeued(data["dead_old"])
    assert len(enqueued) == 2


def test_event_requeue_refuses_get_and_users_without_change_permission(
    django_user_model: Any, admin_client: Client, data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_event", "view_delivery"], content_type__app_label="events"
        )
    )
    viewer = Client()
    viewer.force_login(user)
    event, dead = data["cancelled"], data["dead_new"]

    get = admin_client.get(event_requeue_url(event.pk))
    page = viewer.get(event_page(event.pk))
    delivery = viewer.get(delivery_page(dead))
    post = viewer.post(event_requeue_url(event.pk))

    assert (get.status_code, page.status_code, delivery.status_code) == (405, 200, 200)
    assert 'class="post-tool"' not in page.content.decode()
    assert 'class="post-tool"' not in delivery.content.decode()
    assert post.status_code == 403
    assert_still_dead(dead)
    assert enqueued == []


def test_event_requeue_needs_a_csrf_token(admin_user: Any, data: dict[str, Any]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    response = client.post(event_requeue_url(data["cancelled"].pk))

    assert response.status_code == 403
    assert_still_dead(data["dead_new"])


# --- Requeue messages --------------------------------------------------------------------


def test_requeue_message_for_one_among_several_ticked(
    admin_client: Client, data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    # given two ticked dead letters, one of which someone else requeued meanwhile
    dead, gone = data["dead_old"], data["dead_new"]
    Delivery.objects.filter(pk=gone.pk).update(status=DeliveryStatus.PENDING)
    form = {"action": "requeue_selected", "_selected_action": [dead.pk, gone.pk]}

    response = admin_client.post(DEAD, form, follow=True)

    assert messages_of(response) == [
        f"Requeued delivery {dead.pk} (test.notify for event {short(dead.event)}). "
        "1 was no longer dead-lettered and was left alone."
    ]
    assert_requeued(dead)
