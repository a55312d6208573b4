"""Fan-out limits in the admin: a route's caps on follow-ups (how many, how deep) and a source's
cap on deliveries per event are edited on their pages, a value out of range is a form error,
and a delivery refused over a cap shows its reason among the dead letters."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from events.models import Delivery, Route, Source
from events.publish import publish

from .helpers import DEAD
from .test_route_admin import route_form
from .test_source_admin import source_form

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


@pytest.mark.parametrize(("entered", "stored"), [("3", 3), ("0", 0), ("32766", 32766), ("", None)])
def test_a_routes_depth_cap_is_saved_from_its_page(
    admin_client: Client, entered: str, stored: int | None
) -> None:
    route = Route.objects.create(
        name="rebook cancellations",
        event_type="scenario.reservation.*",
        handler="test.rebook",
        max_depth=7,
    )

    response = admin_client.post(
        reverse("admin:events_route_change", args=[route.pk]), route_form(max_depth=entered)
    )

    assert response.status_code == 302
    route.refresh_from_db()
    assert route.max_depth == stored


@pytest.mark.parametrize(
    ("entered", "error"),
    [
        ("32767", "Must be from 0 to 32766 (an event's depth is a small integer)"),
        ("-1", "Ensure this value is greater than or equal to 0."),
        ("deep", "Enter a whole number."),
    ],
)
def test_a_depth_cap_out_of_range_is_a_form_error(
    admin_client: Client, entered: str, error: str
) -> None:
    route = Route.objects.create(
        name="rebook cancellations", event_type="scenario.reservation.*", handler="test.rebook"
    )

    response = admin_client.post(
        reverse("admin:events_route_change", args=[route.pk]), route_form(max_depth=entered)
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["max_depth"]
    assert errors["max_depth"][0].startswith(error)
    route.refresh_from_db()
    assert route.max_depth is None


@pytest.mark.parametrize(("entered", "stored"), [("2", 2), ("1", 1), ("", None)])
def test_a_sources_delivery_cap_is_saved_from_its_page(
    admin_client: Client, entered: str, stored: int | None
) -> None:
    source = Source.objects.create(slug="fanout", kind="api", max_deliveries_per_event=9)

    response = admin_client.post(
        reverse("admin:events_source_change", args=[source.pk]),
        source_form(source, max_deliveries_per_event=entered),
    )

    assert response.status_code == 302
    source.refresh_from_db()
    assert source.max_deliveries_per_event == stored


@pytest.mark.parametrize(
    ("entered", "error"),
    [
        ("0", "Must be at least 1 (or empty for the setting)."),
        ("-3", "Ensure this value is greater than or equal to 0."),
        ("many", "Enter a whole number."),
    ],
)
def test_a_delivery_cap_below_one_is_a_form_error(
    admin_client: Client, entered: str, error: str
) -> None:
    source = Source.objects.create(slug="fanout", kind="api")

    response = admin_client.post(
        reverse("admin:events_source_change", args=[source.pk]),
        source_form(source, max_deliveries_per_event=entered),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {"max_deliveries_per_event": [error]}
    source.refresh_from_db()
    assert source.max_deliveries_per_event is None


def test_both_caps_show_on_their_pages_with_their_help(admin_client: Client) -> None:
    route = Route.objects.create(name="r", event_type="t", handler="test.rebook")
    source = Source.objects.create(slug="fanout", kind="api")

    route_page = admin_client.get(reverse("admin:events_route_change", args=[route.pk]))
    source_page = admin_client.get(reverse("admin:events_source_change", args=[source.pk]))

    assert 'name="max_depth"' in route_page.content.decode()
    assert "Empty: the SWITCHYARD_MAX_EMIT_DEPTH setting." in route_page.content.decode()
    assert 'name="max_deliveries_per_event"' in source_page.content.decode()
    assert "SWITCHYARD_MAX_DELIVERIES_PER_EVENT setting" in source_page.content.decode()


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
