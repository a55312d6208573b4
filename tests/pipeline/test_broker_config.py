"""The broker settings that the delivery guarantees depend on."""

from __future__ import annotations

from django.conf import settings

from events.models import Delivery, Event, Route, Source
from events.transitions import route_settings


def test_route_settings_are_clamped_to_the_limits_the_broker_allows_for(db: None) -> None:
    # given a route asking for more than the visibility timeout was sized for
    source = Source.objects.create(slug="s", kind="api")
    route = Route.objects.create(
        name="greedy",
        event_type="x",
        handler="test.chaos",
        time_limit=settings.SWITCHYARD_MAX_TIME_LIMIT * 10,
        backoff_max=settings.SWITCHYARD_MAX_BACKOFF * 10,
    )
    event = Event.objects.create(source=source, external_id="1", type="x", payload={})
    delivery = Delivery.objects.create(event=event, route=route, handler="test.chaos")

    # then the settings in force stay within the limits
    rs = route_settings(delivery)
    assert rs.time_limit == settings.SWITCHYARD_MAX_TIME_LIMIT
    assert rs.backoff_max == settings.SWITCHYARD_MAX_BACKOFF
