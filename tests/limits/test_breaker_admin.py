"""The circuit breakers in the admin and in /metrics: a resource's page shows its breaker's
live state with buttons that post (Open now, Close now, Automatic), the dashboard lists each
breaker, and a gauge says each one's state."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from events import breakers
from events.metrics import PipelineCollector
from events.models import Resource

pytestmark = pytest.mark.django_db


@pytest.fixture
def flaky(db: None) -> Resource:
    return Resource.objects.create(
        name="flaky", breaker_enabled=True, breaker_threshold=2, breaker_cooldown=60
    )


def _open(resource: Resource) -> None:
    breaker = breakers.of(resource)
    assert [breakers.record(breaker, ok=False) for _ in range(2)] == ["closed", "open"]


def _gauge(name: str) -> dict[str, float]:
    for family in PipelineCollector().collect():
        if family.name == name:
            return {sample.labels["resource"]: sample.value for sample in family.samples}
    raise AssertionError(f"no {name}")


def test_a_resources_page_shows_its_breaker_open_with_the_buttons(
    admin_client: Client, flaky: Resource
) -> None:
    _open(flaky)

    page = admin_client.get(reverse("admin:events_resource_change", args=[flaky.pk]))

    html = page.content.decode()
    assert "Circuit breaker" in html
    assert "open since " in html
    assert ", 2 failures in 30 s" in html
    for action, label in (("open", "Open now"), ("close", "Close now"), ("automatic", "Automatic")):
        url = reverse("admin:events_resource_breaker", args=[flaky.pk, action])
        assert f'action="{url}"' in html
        assert f'<button type="submit">{label}</button>' in html
    assert "<script>" not in html.split('id="content"')[1]


def test_the_buttons_force_the_breaker_and_automatic_resets_it(
    admin_client: Client, flaky: Resource
) -> None:
    _open(flaky)

    def press(action: str) -> Any:
        url = reverse("admin:events_resource_breaker", args=[flaky.pk, action])
        return admin_client.post(url)

    assert press("close").status_code == 302
    flaky.refresh_from_db()
    assert flaky.breaker_mode == "closed"
    assert breakers.effective(breakers.of(flaky)).state == "forced closed"

    assert press("open").status_code == 302
    flaky.refresh_from_db()
    assert flaky.breaker_mode == "open"
    assert _gauge("switchyard_breaker_state") == {"flaky": 2.0}

    assert press("automatic").status_code == 302
    flaky.refresh_from_db()
    assert flaky.breaker_mode == "auto"
    assert breakers.read(breakers.of(flaky)).state == "closed"
    assert _gauge("switchyard_breaker_state") == {"flaky": 0.0}


def test_the_buttons_refuse_a_get_and_a_user_who_may_only_view(
    admin_client: Client, client: Client, django_user_model: Any, flaky: Resource
) -> None:
    url = reverse("admin:events_resource_breaker", args=[flaky.pk, "open"])
    assert admin_client.get(url).status_code == 405

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_resource"))
    client.force_login(viewer)
    page = client.get(reverse("admin:events_resource_change", args=[flaky.pk]))
    assert page.status_code == 200
    assert url not in page.content.decode()
    assert client.post(url).status_code == 403
    flaky.refresh_from_db()
    assert flaky.breaker_mode == "auto"


def test_the_dashboard_lists_each_breaker_linking_to_its_resource(
    admin_client: Client, flaky: Resource
) -> None:
    Resource.objects.create(name="quiet")  # no breaker: not listed
    _open(flaky)

    html = admin_client.get(reverse("admin:index")).content.decode()

    assert "Circuit breakers" in html
    link = reverse("admin:events_resource_change", args=[flaky.pk])
    assert f'<a href="{link}">flaky</a>' in html
    assert "quiet</a>" not in html
    assert _gauge("switchyard_breaker_state") == {"flaky": 2.0}


def test_a_half_open_breaker_reads_as_one_in_metrics(flaky: Resource) -> None:
    _open(flaky)
    client = breakers.redis_client(breakers.settings.REDIS_URL)
    client.hset(breakers.of(flaky).state_key, "until", "0")
    assert breakers.allow(breakers.of(flaky), 1, probe_ttl=10).state == "probe"
    assert _gauge("switchyard_breaker_state") == {"flaky": 1.0}


def test_the_dashboard_has_no_breakers_panel_when_no_breaker_is_on(admin_client: Client) -> None:
    Resource.objects.create(name="quiet", rate=5)
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Circuit breakers" not in html


def test_a_resource_is_added_with_its_breaker_settings(admin_client: Client) -> None:
    url = reverse("admin:events_resource_add")
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(
        url,
        {
            "name": "anthropic",
            "description": "",
            "rate": "",
            "burst": "1",
            "breaker_enabled": "on",
            "breaker_threshold": "5",
            "breaker_window": "30",
            "breaker_cooldown": "30",
            "breaker_mode": "auto",
        },
    )

    assert response.status_code == 302
    saved = Resource.objects.get(name="anthropic")
    assert (saved.breaker_enabled, saved.breaker_threshold, saved.breaker_cooldown) == (
        True,
        5,
        30,
    )
    page = admin_client.get(reverse("admin:events_resource_change", args=[saved.pk]))
    assert "closed (0 failures in the last 30 s)" in page.content.decode()
