"""Fan-out limits in the admin: a route's cap on follow-ups is edited on its page, and a
delivery refused over a cap shows its reason among the dead letters."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from events.models import Delivery, Route, Source
from events.publish import publish

from .helpers import DEAD
from .test_route_admin import route_form

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("entered", "stored"), [("3", 3), ("0", 0), ("", None)])
def test_a_routes_emit_cap_is_saved_from_its_page(
    admin_client: Client, entered: str, stored: int | None
) -> None:
    route = Route.objects.create(
        name="rebook cancellations",
        event_type="scenario.reservation.*",
        handler="test.rebook",
        max_emits=7,
    )

    response = admin_client.post(
        reverse("admin:events_route_change", args=[route.pk]), route_form(max_emits=entered)
    )

    assert response.status_code == 302
    route.refresh_from_db()
    assert route.max_emits == stored


def test_a_delivery_refused_over_the_delivery_cap_is_listed_with_its_reason(
    admin_client: Client, settings: Any
) -> None:
    settings.SWITCHYARD_MAX_DELIVERIES_PER_EVENT = 1
    for name, handler in (("wide 1", "test.noop"), ("wide 2", "test.child")):
        Route.objects.create(name=name, event_type="test.fanout.wide", handler=handler)
    source = Source.objects.create(slug="fanout", kind="api")
    publish(source=source, type="test.fanout.wide", payload={})

    response = admin_client.get(DEAD)

    assert [(d.handler, d.error_class) for d in response.context["cl"].result_list] == [
        ("test.child", "events.fanout.FanOutLimit")
    ]
    assert (
        "not run: the event matched 2 routes, over the cap of 1 deliveries per event"
        in response.content.decode()
    )


def test_an_events_page_shows_its_refused_delivery_and_its_follow_up_depth(
    admin_client: Client, settings: Any
) -> None:
    settings.SWITCHYARD_MAX_DELIVERIES_PER_EVENT = 1
    for name, handler in (("wide 1", "test.noop"), ("wide 2", "test.child")):
        Route.objects.create(name=name, event_type="test.fanout.wide", handler=handler)
    source = Source.objects.create(slug="fanout", kind="api")
    parent = publish(source=source, type="test.fanout.start", payload={}).event
    emitter = Delivery.objects.create(event=parent, handler="test.emitter")
    event = publish(source=source, type="test.fanout.wide", payload={}, emitted_by=emitter).event

    response = admin_client.get(reverse("admin:events_event_change", args=[event.pk]))

    adminform = response.context["adminform"]
    assert adminform.form.instance.depth == 1
    page = response.content.decode()
    shown = page.split("Follow-up depth:</label>")[1].split("</div>")[0]
    assert shown.split() == ["<div", 'class="readonly">1']
    assert "not run: the event matched 2 routes, over the cap of 1 deliveries per event" in page
