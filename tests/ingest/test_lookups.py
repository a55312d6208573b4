"""The hot path of a webhook: source and routes from a per-process memo, no savepoint.

tests.settings turns the memo off (tests edit sources and routes between requests); these
tests turn it on and move its clock by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from events.models import Delivery, Event, Route, Source
from events.publish import publish
from events.routing import CANDIDATES
from events.views.hooks import SOURCES

from .conftest import CANCELLED, hook_body, post_hook

TTL = 5.0


@pytest.fixture
def memo(settings: Any) -> Iterator[Callable[[float], None]]:
    """The memo on, with a clock the test moves (seconds since the start)."""
    settings.SWITCHYARD_LOOKUP_CACHE_SECONDS = TTL
    now = [1000.0]
    for cache in (SOURCES, CANDIDATES):
        cache.clear()
        cache.clock = lambda: now[0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    yield advance
    for cache in (SOURCES, CANDIDATES):
        cache.clear()


def _tables_read(queries: CaptureQueriesContext) -> set[str]:
    return {
        table
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT")
        for table in ("events_source", "events_route")
        if f'FROM "{table}"' in q["sql"]
    }


@pytest.mark.django_db
def test_a_second_webhook_reads_neither_the_source_nor_the_routes(
    client: Client, hmac_source: Source, memo: Callable[[float], None]
) -> None:
    # given: one webhook has been taken
    assert post_hook(client, hook_body("evt_1")).status_code == 202

    # when
    with CaptureQueriesContext(connection) as queries:
        response = post_hook(client, hook_body("evt_2"))

    # then: stored and routed like the first, from the memo
    assert response.status_code == 202
    assert response.json()["deliveries"] == 2
    assert _tables_read(queries) == set()
    assert Delivery.objects.filter(event__external_id="evt_2").count() == 2


@pytest.mark.django_db
def test_a_disabled_source_is_refused_once_the_memo_expires(
    client: Client, hmac_source: Source, memo: Callable[[float], None]
) -> None:
    assert post_hook(client, hook_body("evt_1")).status_code == 202
    Source.objects.filter(pk=hmac_source.pk).update(enabled=False)

    memo(TTL - 0.1)
    assert post_hook(client, hook_body("evt_2")).status_code == 202
    memo(0.2)
    assert post_hook(client, hook_body("evt_3")).status_code == 404
    assert sorted(Event.objects.values_list("external_id", flat=True)) == ["evt_1", "evt_2"]


@pytest.mark.django_db
def test_an_unknown_slug_is_looked_up_every_time(
    client: Client, memo: Callable[[float], None]
) -> None:
    assert post_hook(client, hook_body(), slug="later").status_code == 404
    Source.objects.create(slug="later", kind="hmac", secrets=["new-secret"])

    assert post_hook(client, hook_body(), slug="later").status_code == 202


@pytest.mark.django_db
def test_a_disabled_route_stops_getting_deliveries_once_the_memo_expires(
    hmac_source: Source, memo: Callable[[float], None]
) -> None:
    first = publish(source=hmac_source, type=CANCELLED, payload={}, external_id="a")
    assert first.deliveries == 2
    disabled = Route.objects.filter(event_type=CANCELLED).order_by("name").first()
    assert disabled is not None
    Route.objects.filter(pk=disabled.pk).update(enabled=False)

    memo(TTL + 0.1)
    later = publish(source=hmac_source, type=CANCELLED, payload={}, external_id="b")

    assert later.deliveries == 1
    assert not Delivery.objects.filter(event=later.event, route=disabled).exists()


@pytest.mark.django_db(transaction=True)
def test_publish_takes_no_savepoint_and_a_duplicate_stores_nothing(
    hmac_source: Source,
) -> None:
    with CaptureQueriesContext(connection) as queries:
        first = publish(source=hmac_source, type=CANCELLED, payload={"n": 1}, external_id="x")
    with CaptureQueriesContext(connection) as dup_queries:
        again = publish(source=hmac_source, type=CANCELLED, payload={"n": 2}, external_id="x")

    statements = [q["sql"].split(" ", 1)[0] for q in queries.captured_queries]
    assert "SAVEPOINT" not in statements
    assert "SAVEPOINT" not in [q["sql"].split(" ", 1)[0] for q in dup_queries.captured_queries]
    assert (first.created, again.created, again.event.id) == (True, False, first.event.id)
    assert Event.objects.get().payload == {"n": 1}
    assert Delivery.objects.count() == 2
