"""Scoped API tokens, over HTTP to the live server: a token publishes only into the api sources
it names and reads only their events (others are a 404), each scope is its own permission, and
failed authentications are throttled per client address."""

from __future__ import annotations

import importlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps

from events.models import ApiToken, Event, Source
from events.publish import publish
from events.tokens import create_token
from tests.conftest import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


def call(
    url: str, token: str, body: dict[str, Any] | None = None, **headers: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback
        url,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


@pytest.fixture
def orders(db: None) -> Source:
    Source.objects.create(slug="billing", kind="api")
    return Source.objects.create(slug="orders", kind="api")


def test_a_token_publishes_only_into_the_sources_it_names(live_server: Any, orders: Source) -> None:
    _, token = create_token("orders-app", sources=["orders"])
    url = f"{live_server.url}/api/events"

    ok = call(url, token, {"type": "order.created", "source": "orders", "payload": {}})
    into_billing = call(url, token, {"type": "order.created", "source": "billing", "payload": {}})
    into_default = call(url, token, {"type": "order.created", "payload": {}})
    into_unknown = call(url, token, {"type": "order.created", "source": "nope", "payload": {}})

    assert ok[0] == 202
    assert [(r[0], r[1]) for r in (into_billing, into_default, into_unknown)] == [
        (403, {"error": "this token may not publish into source 'billing'"}),
        (403, {"error": "this token may not publish into source 'api'"}),
        (403, {"error": "this token may not publish into source 'nope'"}),
    ]
    assert list(Event.objects.values_list("source__slug", flat=True)) == ["orders"]
    assert not Source.objects.filter(slug="api").exists()


def test_a_token_reads_only_events_of_its_sources(live_server: Any, orders: Source) -> None:
    _, reader = create_token("orders-reader", sources=["orders"], scopes=["publish", "read"])
    mine = publish(source=orders, type="order.created", payload={"n": 1}).event
    billing = Source.objects.get(slug="billing")
    github = Source.objects.create(slug="gh", kind="github")
    others = [
        publish(source=billing, type="invoice.created", payload={}).event,
        publish(source=github, type="github.push", payload={}).event,
    ]

    own = call(f"{live_server.url}/api/events/{mine.id}", reader)
    foreign = [call(f"{live_server.url}/api/events/{e.id}", reader)[:2] for e in others]

    assert (own[0], own[1]["payload"]) == (200, {"n": 1})
    assert foreign == [(404, {"error": "no such event"})] * 2


def test_each_scope_is_its_own_permission(live_server: Any, orders: Source) -> None:
    _, publisher = create_token("publisher", sources=["orders"], scopes=["publish"])
    _, reader = create_token("reader", sources=["orders"], scopes=["read"])
    event = publish(source=orders, type="order.created", payload={}).event

    read_by_publisher = call(f"{live_server.url}/api/events/{event.id}", publisher)
    published_by_reader = call(
        f"{live_server.url}/api/events", reader, {"type": "x.y", "source": "orders", "payload": {}}
    )

    assert read_by_publisher[:2] == (403, {"error": "this token may not read events"})
    assert published_by_reader[:2] == (403, {"error": "this token may not publish events"})
    assert Event.objects.count() == 1


@pytest.fixture
def throttle(settings: Any, redis_server: RedisServer) -> Iterator[int]:
    settings.SWITCHYARD_API_AUTH_FAILURES_PER_MINUTE = 5
    settings.SWITCHYARD_CLIENT_IP_HEADER = "X-Real-IP"
    yield 5
    client = redis_server.client()
    for key in client.scan_iter("switchyard:authfail:*"):
        client.delete(key)


def test_failed_authentications_are_throttled_per_client_address(
    live_server: Any, orders: Source, throttle: int
) -> None:
    _, token = create_token("good", sources=["orders"])
    url = f"{live_server.url}/api/events"
    body = {"type": "order.created", "source": "orders", "payload": {}}
    guesses = [
        call(url, f"sy_deadbeef_guess{n}", body, **{"X-Real-IP": "203.0.113.7"}) for n in range(7)
    ]

    right_token_same_address = call(url, token, body, **{"X-Real-IP": "203.0.113.7"})
    other_address = call(url, token, body, **{"X-Real-IP": "198.51.100.2"})

    assert [g[0] for g in guesses] == [401] * throttle + [429] * (7 - throttle)
    _, answer, headers = guesses[-1]
    assert answer["error"] == "too many failed authentications from this address; wait and retry"
    assert 1 <= int(headers["Retry-After"]) <= 60 and answer["retry_after"] == int(
        headers["Retry-After"]
    )
    assert right_token_same_address[0] == 429
    assert other_address[0] == 202
    assert Event.objects.count() == 1


def test_tokens_made_before_scopes_keep_what_they_could_do(db: None) -> None:
    record, _ = create_token("old", sources=[], scopes=[])
    migration = importlib.import_module("events.migrations.0009_token_scopes")

    migration.keep_what_existing_tokens_could_do(
        apps, SimpleNamespace(connection=SimpleNamespace(alias="default"))
    )

    record = ApiToken.objects.get(pk=record.pk)
    assert (record.all_sources, record.can_publish, record.can_read) == (True, True, True)
    assert record.covers("any-api-source")
