"""The admin for routes: handlers from the registry, limits the broker is sized for, and only
the sources a route's handler accepts."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from events.models import Route, Source

from .helpers import form_errors

pytestmark = pytest.mark.django_db

ROUTES = reverse("admin:events_route_changelist")
MAX_TIME_LIMIT = settings.SWITCHYARD_MAX_TIME_LIMIT
MAX_BACKOFF = settings.SWITCHYARD_MAX_BACKOFF


@pytest.fixture
def route(db: None) -> Route:
    return Route.objects.create(
        name="rebook cancellations", event_type="scenario.reservation.*", handler="test.rebook"
    )


def route_form(**changes: Any) -> dict[str, Any]:
    return {
        "name": "rebook cancellations",
        "event_type": "scenario.reservation.*",
        "payload_filter": "{}",
        "handler": "test.rebook",
        "enabled": "on",
        "max_attempts": "5",
        "backoff_base": "2.0",
        "backoff_max": "600",
        "backoff_jitter": "0.25",
        "time_limit": "60",
        "queue": "default",
        "stale_after": "",
        "rate_limit": "",
        "rate_burst": "1",
        "resources": "[]",
        **changes,
    }


def test_route_pages_render(admin_client: Client, route: Route, routes: None) -> None:
    pages = [
        ROUTES,
        reverse("admin:events_route_change", args=[route.pk]),
        reverse("admin:events_route_add"),
        f"{ROUTES}?handler=test.rebook&enabled__exact=1&managed__exact=0",
    ]

    assert {url: admin_client.get(url).status_code for url in pages} == dict.fromkeys(pages, 200)


def test_route_filters(admin_client: Client, route: Route, routes: None) -> None:
    response = admin_client.get(f"{ROUTES}?handler=test.rebook&managed__exact=0")

    assert [r.name for r in response.context["cl"].result_list] == ["rebook cancellations"]


def test_route_handler_choices_are_the_registered_handlers(admin_client: Client, db: None) -> None:
    from handlers.registry import all_handlers

    response = admin_client.get(reverse("admin:events_route_add"))

    field = response.context["adminform"].form.fields["handler"]
    assert [value for value, _ in field.choices] == ["", *(s.name for s in all_handlers())]


def test_route_form_saves_valid_changes(admin_client: Client, route: Route) -> None:
    response = admin_client.post(
        reverse("admin:events_route_change", args=[route.pk]),
        route_form(
            handler="test.notify",
            time_limit=str(MAX_TIME_LIMIT),
            backoff_max=str(MAX_BACKOFF),
            payload_filter='{"guest": ["Ann", "Bo"]}',
        ),
    )

    assert response.status_code == 302
    route.refresh_from_db()
    assert (route.handler, route.time_limit, route.backoff_max, route.payload_filter) == (
        "test.notify",
        MAX_TIME_LIMIT,
        float(MAX_BACKOFF),
        {"guest": ["Ann", "Bo"]},
    )


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"handler": "nobody.home"},
            {
                "handler": [
                    "Select a valid choice. nobody.home is not one of the available choices."
                ]
            },
        ),
        (
            {"time_limit": str(MAX_TIME_LIMIT + 1)},
            {
                "time_limit": [
                    f"At most {MAX_TIME_LIMIT} seconds (SWITCHYARD_MAX_TIME_LIMIT); the broker's "
                    "visibility timeout is sized for it."
                ]
            },
        ),
        ({"time_limit": "0"}, {"time_limit": ["Must be at least 1 second."]}),
        (
            {"backoff_max": str(MAX_BACKOFF + 0.5)},
            {
                "backoff_max": [
                    f"At most {MAX_BACKOFF} seconds (SWITCHYARD_MAX_BACKOFF); the broker's "
                    "visibility timeout is sized for it."
                ]
            },
        ),
        (
            {"backoff_base": "10", "backoff_max": "5"},
            {"backoff_max": ["Must not be less than the backoff base."]},
        ),
        ({"backoff_jitter": "1.5"}, {"backoff_jitter": ["Must be between 0 and 1."]}),
        (
            {"payload_filter": '["opened"]'},
            {"payload_filter": ['Must be a JSON object, e.g. {"action": ["opened", "reopened"]}.']},
        ),
        ({"payload_filter": "{oops"}, {"payload_filter": ["Enter a valid JSON."]}),
        (
            {"max_attempts": "0"},
            {"max_attempts": ["Ensure this value is greater than or equal to 1."]},
        ),
    ],
)
def test_route_form_refuses_bad_input(
    admin_client: Client, route: Route, changes: dict[str, str], errors: dict[str, list[str]]
) -> None:
    response = admin_client.post(
        reverse("admin:events_route_change", args=[route.pk]), route_form(**changes)
    )

    assert form_errors(response) == errors
    route.refresh_from_db()
    assert (route.handler, route.time_limit, route.backoff_max) == ("test.rebook", 60, 600.0)


def test_route_form_saves_the_sources_it_takes(admin_client: Client, route: Route) -> None:
    Source.objects.create(slug="shop", kind="hmac")

    response = admin_client.post(
        reverse("admin:events_route_change", args=[route.pk]),
        {**route_form(), "source_kinds": ["api", "hmac"], "source_slugs": ["shop"]},
    )

    assert response.status_code == 302
    route.refresh_from_db()
    assert (route.source_kinds, route.source_slugs) == (["api", "hmac"], ["shop"])
    listed_sources = admin_client.get(ROUTES).context["cl"].model_admin.sources(route)
    assert listed_sources == "api, hmac, shop"


def test_route_form_refuses_sources_the_handler_does_not_accept(
    admin_client: Client, route: Route
) -> None:
    Source.objects.create(slug="public-api", kind="api")
    Source.objects.create(slug="gh", kind="github")
    changes = route_form(handler="github.pr_review", event_type="github.pull_request.*")

    response = admin_client.post(
        reverse("admin:events_route_change", args=[route.pk]),
        {**changes, "source_kinds": ["github", "api"], "source_slugs": ["gh", "public-api"]},
    )

    assert form_errors(response) == {
        "source_kinds": ["github.pr_review takes events only from github sources; untick api."],
        "source_slugs": [
            "github.pr_review takes events only from github sources; public-api is not one."
        ],
    }
    route.refresh_from_db()
    assert (route.handler, route.source_kinds, route.source_slugs) == ("test.rebook", [], [])


def test_the_route_page_says_what_its_handler_accepts(admin_client: Client, routes: None) -> None:
    managed = Route.objects.get(handler="github.pr_review", event_type="github.pull_request.opened")

    page = admin_client.get(reverse("admin:events_route_change", args=[managed.pk]))
    listed_sources = admin_client.get(ROUTES).context["cl"].model_admin.sources(managed)

    form = page.context["adminform"].form
    assert form.initial["source_kinds"] == ["github"]
    assert "only events from github sources, whatever this route says" in page.content.decode()
    assert listed_sources == "github (handler: github only)"


def test_enabled_is_editable_in_the_route_list(admin_client: Client, route: Route) -> None:
    # given a route whose handler is no longer registered: it can still be switched off
    Route.objects.filter(pk=route.pk).update(handler="retired.handler")
    rows = list(Route.objects.order_by("name"))
    form: dict[str, Any] = {
        "form-TOTAL_FORMS": str(len(rows)),
        "form-INITIAL_FORMS": str(len(rows)),
        "_save": "Save",
    }
    for index, row in enumerate(rows):
        form[f"form-{index}-id"] = str(row.pk)
        if row.enabled and row.pk != route.pk:
            form[f"form-{index}-enabled"] = "on"

    response = admin_client.post(ROUTES, form)

    assert response.status_code == 302
    assert {r.pk: r.enabled for r in Route.objects.all()} == {
        row.pk: row.enabled and row.pk != route.pk for row in rows
    }
