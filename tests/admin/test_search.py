"""Finding things from the lists' search boxes: an event by a word deep in its payload, its
partition key or external id; a delivery or dead letter by part of its handler, error class or
error text, or by its event's external id."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from events.models import Delivery, Event, EventStatus, Source

from .helpers import DEAD, DELIVERIES, EVENTS, listed, make_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def booking(data: dict[str, Any], hmac_source: Source) -> Event:
    """An event with a guest's name three levels down in its payload, and a partition key."""
    event = make_event(hmac_source, "bk-7", "hotel.booking.created", EventStatus.PROCESSED, 5)
    event.payload = {"booking": {"room": 12, "guests": [{"name": "Margaret Hamilton"}]}}
    event.partition_key = "guest-0042"
    event.save(update_fields=["payload", "partition_key"])
    return event


def external_ids(client: Client, query: str) -> list[str]:
    return [event.external_id for event in listed(client, f"{EVENTS}?{query}")]


@pytest.mark.parametrize("term", ["Margaret", "margaret", "MARGARET HAM", "aret Hamil"])
def test_event_search_finds_a_name_deep_inside_the_payload(
    admin_client: Client, booking: Event, term: str
) -> None:
    assert external_ids(admin_client, f"q={term}") == ["bk-7"]


@pytest.mark.parametrize("term", ["guest-0042", "GUEST-0042", "0042"])
def test_event_search_by_partition_key(admin_client: Client, booking: Event, term: str) -> None:
    assert external_ids(admin_client, f"q={term}") == ["bk-7"]


def test_event_search_by_external_id(admin_client: Client, booking: Event) -> None:
    assert external_ids(admin_client, "q=bk-7") == ["bk-7"]
    assert external_ids(admin_client, "q=ord_2") == ["ord_2"]


def test_event_search_by_part_of_the_type(admin_client: Client, booking: Event) -> None:
    assert external_ids(admin_client, "q=booking.created") == ["bk-7"]
    assert external_ids(admin_client, "q=order.re") == ["ord_3"]


def test_event_search_takes_wildcards_literally(admin_client: Client, booking: Event) -> None:
    assert external_ids(admin_client, "q=%25%25%25") == []
    assert external_ids(admin_client, "q=___") == []


def test_event_search_of_two_characters_matches_only_an_external_id(
    admin_client: Client, booking: Event, hmac_source: Source
) -> None:
    make_event(hmac_source, "Ma", "hotel.booking.created", EventStatus.PROCESSED, 6)

    assert external_ids(admin_client, "q=Ma") == ["Ma"]


@pytest.fixture
def guest_list_error(data: dict[str, Any]) -> Delivery:
    """The newer dead letter, with an error text of its own."""
    dead = data["dead_new"]
    Delivery.objects.filter(pk=dead.pk).update(
        last_error="KeyError: 'Margaret' is missing from the guest list"
    )
    return dead


@pytest.mark.parametrize("url", [DELIVERIES, DEAD])
@pytest.mark.parametrize("term", ["from the guest list", "FROM THE GUEST LIST", "margaret"])
def test_delivery_lists_search_by_error_text(
    admin_client: Client, guest_list_error: Delivery, url: str, term: str
) -> None:
    assert [d.pk for d in listed(admin_client, f"{url}?q={term}")] == [guest_list_error.pk]


@pytest.mark.parametrize("url", [DELIVERIES, DEAD])
def test_delivery_lists_search_by_error_class(
    admin_client: Client, data: dict[str, Any], url: str
) -> None:
    assert [d.pk for d in listed(admin_client, f"{url}?q=keyerr")] == [data["dead_new"].pk]


def test_delivery_search_by_the_events_external_id(
    admin_client: Client, data: dict[str, Any]
) -> None:
    rows = listed(admin_client, f"{DELIVERIES}?q=ord_2")

    assert sorted(d.pk for d in rows) == sorted([data["dead_old"].pk, data["dead_new"].pk])


def test_dead_letter_search_by_any_part_of_the_handler(
    admin_client: Client, data: dict[str, Any]
) -> None:
    # test.rebook also has a succeeded delivery, which is no dead letter.
    assert [d.pk for d in listed(admin_client, f"{DEAD}?q=rebook")] == [data["dead_new"].pk]
    assert [d.pk for d in listed(admin_client, f"{DEAD}?q=notif")] == [data["dead_old"].pk]
