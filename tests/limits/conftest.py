"""Fixtures of the rate-limit and circuit-breaker tests: empty buckets and breakers, and the
handlers' routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from events.models import Route, Source
from tests.redis_server import RedisServer


@pytest.fixture(autouse=True)
def empty_buckets(redis_server: RedisServer) -> Iterator[None]:
    """No bucket (or message on the handler's queue) left over from another test."""

    def clear() -> None:
        client = redis_server.client()
        for pattern in ("switchyard:limit:*", "switchyard:breaker:*"):
            for key in client.scan_iter(pattern):
                client.delete(key)
        client.delete("limits", "breakers")

    clear()
    yield
    clear()


@pytest.fixture
def api_source(db: None) -> Source:
    return Source.objects.create(slug="limits-tests", kind="api")


@pytest.fixture
def limited_route(routes: None) -> Route:
    """The route sync_routes made for test.limited (queue "limits", one attempt)."""
    return Route.objects.get(handler="test.limited")


@pytest.fixture
def breaker_route(routes: None) -> Route:
    """The route sync_routes made for test.breaker (queue "breakers", resource "flaky")."""
    return Route.objects.get(handler="test.breaker")
