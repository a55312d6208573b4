"""Which limits a delivery is under: what handlers declare and routes name."""

from __future__ import annotations

import pytest

from events.limits import limits_for
from events.models import Resource, Route
from handlers import registry


def test_a_resource_name_that_is_not_a_slug_is_refused_at_declaration() -> None:
    with pytest.raises(ValueError, match="resource 'anthropic api' must match"):
        registry.handler("test.bad_resource", resources=["anthropic api"])


@pytest.mark.parametrize(
    "name", ["alerts.triage", "briefing.daily", "payments.recovery", "support.triage"]
)
def test_the_built_in_agents_use_the_anthropic_resource(name: str) -> None:
    spec = registry.get(name)
    assert spec is not None and spec.resources == ("anthropic",)


@pytest.mark.django_db
def test_a_route_made_for_a_handler_names_its_resources_and_is_under_their_limits(
    limited_route: Route,
) -> None:
    Resource.objects.create(name="test-api", rate=3, burst=2)
    Resource.objects.create(name="unused", rate=1)
    Route.objects.filter(id=limited_route.id).update(rate_limit=7, rate_burst=4)

    found = limits_for(limited_route.id, "test.limited")

    assert limited_route.resources == ["test-api"]
    assert [(b.key, b.rate, b.burst) for b in found.buckets] == [
        (f"switchyard:limit:route:{limited_route.id}", 7.0, 4),
        ("switchyard:limit:resource:test-api", 3.0, 2),
    ]
    assert (found.queue, found.time_limit) == ("limits", 60)
