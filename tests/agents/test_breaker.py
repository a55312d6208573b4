"""An agent's model provider failing trips the ``anthropic`` circuit breaker: the real SDK
against the fake Messages API answering 529 (overloaded), the deliveries run by execute()
(what the Celery task calls) against real PostgreSQL and the test session's Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from events import breakers
from events.delivery import execute
from events.models import Delivery, Resource, Route, Source
from events.publish import publish
from tests.redis_server import RedisServer

from .conftest import FakeMessagesAPI

pytestmark = pytest.mark.django_db


@pytest.fixture
def anthropic(routes: None, redis_server: RedisServer) -> Iterator[Resource]:
    """The ``anthropic`` resource with its breaker on (2 failures open it for a minute),
    named by the test agent's route; no breaker state before or after."""
    client = redis_server.client()
    client.delete("switchyard:breaker:anthropic", "switchyard:breaker:anthropic:failures")
    Route.objects.filter(handler="test.http_agent").update(resources=["anthropic"])
    yield Resource.objects.create(
        name="anthropic", breaker_enabled=True, breaker_threshold=2, breaker_cooldown=60
    )
    client.delete("switchyard:breaker:anthropic", "switchyard:breaker:anthropic:failures")


def _ask(source: Source) -> Delivery:
    event = publish(source=source, type="agentrun.question", payload={"q": "Where?"}).event
    return Delivery.objects.get(event=event)


def test_overloaded_answers_open_the_breaker_and_later_runs_wait_without_calling_the_api(
    fake_api: FakeMessagesAPI, anthropic: Resource
) -> None:
    source = Source.objects.create(slug="breaker-agents", kind="api")
    # given two agent attempts failing on 529 (each: one call and the SDK's one retry)
    for _ in range(4):
        fake_api.error(529, "overloaded_error")
    first, second = _ask(source), _ask(source)
    assert execute(first.id).status == "retrying"
    assert execute(second.id).status == "retrying"
    assert len(fake_api.requests) == 4

    # when the next agent delivery comes
    third = _ask(source)
    outcome = execute(third.id)

    # then it waits for the cool-down, with no attempt and no call to the API
    assert outcome.status == "deferred"
    third.refresh_from_db()
    assert (third.status, third.total_attempts) == ("pending", 0)
    assert third.deferred_reason.startswith("circuit open: anthropic since ")
    assert len(fake_api.requests) == 4

    # when the cool-down is over and the API answers again: the probe runs and closes it
    breaker = breakers.of(anthropic)
    breakers.redis_client(breakers.settings.REDIS_URL).hset(breaker.state_key, "until", "0")
    fake_api.text("In the warehouse.")
    Delivery.objects.filter(id=third.id).update(next_attempt_at=third.created_at)
    assert execute(third.id).status == "succeeded"
    assert len(fake_api.requests) == 5
    assert breakers.read(breaker).state == "closed"
