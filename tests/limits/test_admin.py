"""The limits in the admin: resources edited, a route's limits checked, a deferral shown."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from events.delivery import execute
from events.models import Delivery, Resource, Route, Source
from events.publish import publish
from tests.admin.helpers import form_errors

pytestmark = pytest.mark.django_db


def _route_form(route: Route, **changes: Any) -> dict[str, Any]:
    return {
        "name": route.name,
        "event_type": route.event_type,
        "payload_filter": "{}",
        "handler": route.handler,
        "enabled": "on",
        "max_attempts": "1",
        "backoff_base": "2.0",
        "backoff_max": "600",
        "backoff_jitter": "0.25",
        "time_limit": "60",
        "queue": "limits",
        "stale_after": "",
        "rate_limit": "2.5",
        "rate_burst": "3",
        "resources": '["test-api", "github"]',
        **changes,
    }


def test_a_routes_rate_limit_and_resources_are_saved(
    admin_client: Client, limited_route: Route
) -> None:
    url = reverse("admin:events_route_change", args=[limited_route.pk])

    response = admin_client.post(url, _route_form(limited_route))

    assert response.status_code == 302, form_errors(response)
    limited_route.refresh_from_db()
    assert (limited_route.rate_limit, limited_route.rate_burst) == (2.5, 3)
    assert limited_route.resources == ["test-api", "github"]


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"rate_limit": "0"}, "rate_limit", "Must be more than 0 (or empty for no limit)."),
        ({"rate_burst": "0"}, "rate_burst", "Ensure this value is greater than or equal to 1."),
        (
            {"resources": '{"github": 1}'},
            "resources",
            'Must be a JSON list of resource names, e.g. ["github"].',
        ),
    ],
)
def test_a_route_form_refuses_a_bad_limit(
    admin_client: Client, limited_route: Route, changes: dict[str, str], field: str, error: str
) -> None:
    url = reverse("admin:events_route_change", args=[limited_route.pk])

    response = admin_client.post(url, _route_form(limited_route, **changes))

    assert response.status_code == 200
    assert form_errors(response) == {field: [error]}


def test_resources_are_listed_and_their_rate_edited_in_the_list(
    admin_client: Client, limited_route: Route
) -> None:
    resource = Resource.objects.create(name="test-api", rate=10, burst=2)
    changelist = reverse("admin:events_resource_changelist")

    page = admin_client.get(changelist)
    saved = admin_client.post(
        changelist,
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(resource.pk),
            "form-0-rate": "4",
            "form-0-burst": "1",
            "_save": "Save",
        },
    )

    assert page.status_code == 200
    assert '<td class="field-routes">1</td>' in page.content.decode()
    assert saved.status_code == 302
    resource.refresh_from_db()
    assert (resource.rate, resource.burst) == (4.0, 1)


def test_a_deferred_delivery_shows_why_on_its_page(
    admin_client: Client, api_source: Source, limited_route: Route
) -> None:
    Resource.objects.create(name="test-api", rate=0.5, burst=1)
    events = [publish(source=api_source, type="test.limited", payload={}).event for _ in "ab"]
    first, second = (Delivery.objects.get(event=event) for event in events)
    execute(first.id)
    execute(second.id)

    page = admin_client.get(reverse("admin:events_delivery_change", args=[second.pk]))

    html = page.content.decode()
    assert "Deferred by limits" in html
    assert "rate limit test-api: 0.5/s" in html
