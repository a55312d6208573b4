"""The admin for events and deliveries: every page renders, nothing is edited by hand, and the
lists' search and filters find exactly what they should."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from events.models import DeliveryStatus, Source

from .helpers import DEAD, DELIVERIES, EVENTS, listed

pytestmark = pytest.mark.django_db

# --- Rendering ---------------------------------------------------------------------------


def test_every_pipeline_page_renders_with_data(admin_client: Client, data: dict[str, Any]) -> None:
    # given events with deliveries and attempts
    dead = data["dead_new"]
    pages = [
        reverse("admin:index"),
        EVENTS,
        reverse("admin:events_event_change", args=[data["cancelled"].pk]),
        reverse("admin:events_event_history", args=[data["cancelled"].pk]),
        DELIVERIES,
        reverse("admin:events_delivery_change", args=[dead.pk]),
        DEAD,
        reverse("admin:events_deadletter_change", args=[dead.pk]),
        reverse("admin:django_celery_beat_periodictask_changelist"),
        reverse("admin:django_celery_results_taskresult_changelist"),
    ]

    # when each page is fetched, then each renders
    assert {url: admin_client.get(url).status_code for url in pages} == dict.fromkeys(pages, 200)


def test_site_is_branded_switchyard(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:index"))

    assert response.context["site_header"] == "Switchyard"
    assert response.context["site_title"] == "Switchyard"
    assert "<title>Operations | Switchyard</title>" in response.content.decode()


def test_event_list_counts_deliveries_newest_first(
    admin_client: Client, data: dict[str, Any]
) -> None:
    rows = listed(admin_client, EVENTS)

    assert [(e.external_id, e.delivery_count) for e in rows] == [
        ("ord_3", 0),
        ("ord_2", 2),
        ("ord_1", 1),
    ]


def test_event_page_shows_deliveries_and_payload(
    admin_client: Client, data: dict[str, Any]
) -> None:
    event = data["cancelled"]

    response = admin_client.get(reverse("admin:events_event_change", args=[event.pk]))

    html = response.content.decode()
    for dead in (data["dead_old"], data["dead_new"]):
        link = reverse("admin:events_delivery_change", args=[dead.pk])
        assert f'<a href="{link}">{dead.handler}</a>' in html
    assert "payload-marker" in html
    # Read-only: nothing to save, no inline inputs, no inline rows to add.
    assert 'name="_save"' not in html
    assert 'name="deliveries-0-status"' not in html
    assert 'name="deliveries-MAX_NUM_FORMS" value="0"' in html


def test_delivery_page_shows_attempts_and_their_collapsed_tracebacks_below(
    admin_client: Client, data: dict[str, Any]
) -> None:
    dead = data["dead_new"]

    response = admin_client.get(reverse("admin:events_delivery_change", args=[dead.pk]))

    html = response.content.decode()
    # each attempt's row links to its traceback, listed newest first below the attempts
    for number in (1, 2, 3):
        assert f'<a href="#traceback-{number}">below</a>' in html
    tracebacks = html[html.index('<fieldset class="module tracebacks">') :]
    assert [tracebacks.index(f'id="traceback-{n}"') for n in (3, 2, 1)] == sorted(
        tracebacks.index(f'id="traceback-{n}"') for n in (3, 2, 1)
    )
    assert (
        '<details class="traceback"><summary>attempt 2: KeyError</summary>'
        '<pre id="traceback-2">Traceback (most recent call last):\n  attempt 2 frame-marker\n'
        "</pre></details>"
    ) in tracebacks
    assert "celery@w1" in html
    assert 'name="_save"' not in html


def test_deliveries_and_events_cannot_be_added_edited_or_deleted_by_hand(
    admin_client: Client, data: dict[str, Any]
) -> None:
    dead = data["dead_new"]
    change = reverse("admin:events_delivery_change", args=[dead.pk])

    answers = [
        admin_client.get(reverse("admin:events_delivery_add")).status_code,
        admin_client.get(reverse("admin:events_event_add")).status_code,
        admin_client.get(reverse("admin:events_deadletter_add")).status_code,
        admin_client.post(change, {"status": "succeeded", "handler": "x"}).status_code,
        admin_client.post(
            reverse("admin:events_delivery_delete", args=[dead.pk]), {"post": "yes"}
        ).status_code,
    ]

    assert answers == [403, 403, 403, 403, 403]
    dead.refresh_from_db()
    assert (dead.status, dead.handler) == (DeliveryStatus.DEAD_LETTERED, "test.rebook")


# --- Search and filters ------------------------------------------------------------------


def test_event_search_by_uuid_finds_exactly_that_event(
    admin_client: Client, data: dict[str, Any]
) -> None:
    event = data["cancelled"]

    rows = listed(admin_client, f"{EVENTS}?q={event.pk}")

    assert [e.pk for e in rows] == [event.pk]


def test_event_search_by_unknown_uuid_finds_nothing(
    admin_client: Client, data: dict[str, Any]
) -> None:
    assert listed(admin_client, f"{EVENTS}?q={uuid.uuid4()}") == []


def test_event_search_by_external_id_and_type_prefix(
    admin_client: Client, data: dict[str, Any]
) -> None:
    by_external_id = listed(admin_client, f"{EVENTS}?q=ord_1")
    by_type = listed(admin_client, f"{EVENTS}?q=shop.order.")

    assert [e.external_id for e in by_external_id] == ["ord_1"]
    assert [e.external_id for e in by_type] == ["ord_3", "ord_1"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=dead_lettered", ["ord_2"]),
        ("status=ignored", ["ord_3"]),
        ("type=shop.order.paid", ["ord_1"]),
        ("source__id__exact={api}", ["ord_3"]),
        ("received_at__year=2025&received_at__month=3", ["ord_3", "ord_2", "ord_1"]),
        ("received_at__year=2024", []),
    ],
)
def test_event_filters(
    admin_client: Client, data: dict[str, Any], query: str, expected: list[str]
) -> None:
    api = Source.objects.get(slug="api")

    rows = listed(admin_client, f"{EVENTS}?{query.format(api=api.pk)}")

    assert [e.external_id for e in rows] == expected


def test_event_type_filter_offers_recent_types(admin_client: Client, data: dict[str, Any]) -> None:
    response = admin_client.get(EVENTS)

    spec = next(f for f in response.context["cl"].filter_specs if f.title == "type")
    assert [value for value, _ in spec.lookup_choices] == [
        "scenario.reservation.cancelled",
        "shop.order.paid",
        "shop.order.refunded",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=dead_lettered", ["dead_new", "dead_old"]),
        ("status=succeeded", ["ok"]),
        ("handler=test.notify", ["dead_old"]),
        ("error_class=KeyError", ["dead_new"]),
        ("q={event}", ["dead_new", "dead_old"]),
        ("q=test.rebook", ["dead_new", "ok"]),
    ],
)
def test_delivery_filters_and_search(
    admin_client: Client, data: dict[str, Any], query: str, expected: list[str]
) -> None:
    names = {data[name].pk: name for name in ("ok", "dead_old", "dead_new")}

    rows = listed(admin_client, f"{DELIVERIES}?{query.format(event=data['cancelled'].pk)}")

    assert sorted(names[d.pk] for d in rows) == expected


def test_delivery_search_by_id(admin_client: Client, data: dict[str, Any]) -> None:
    rows = listed(admin_client, f"{DELIVERIES}?q={data['ok'].pk}")

    assert [d.pk for d in rows] == [data["ok"].pk]
