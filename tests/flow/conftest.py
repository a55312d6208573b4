"""Fixtures of the flow-control tests: a source, and the route of the test.flow handler."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from events.models import Route, Source
from tests.redis_server import RedisServer


@pytest.fixture(autouse=True)
def empty_queue(redis_server: RedisServer) -> Iterator[None]:
    """No message left on the handler's queue by another test."""
    redis_server.client().delete("flow")
    yield
    redis_server.client().delete("flow")


@pytest.fixture
def flow_source(db: None) -> Source:
    return Source.objects.create(slug="flow-tests", kind="api")


@pytest.fixture
def flow_route(routes: None) -> Route:
    """The route sync_routes made for test.flow (queue "flow", three attempts)."""
    return Route.objects.get(handler="test.flow")
