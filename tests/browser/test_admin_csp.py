"""The admin works under the Content-Security-Policy every response carries: its main pages
load in Chromium with no CSP violation and no console error."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from events.models import Route, Source
from handlers.models import Approval
from tests.admin.helpers import data_fixture
from tests.agents.test_approvals import request_refund

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pages(routes: None, settings: Any) -> list[str]:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    shop = Source.objects.create(slug="shop", kind="hmac", secrets=["csp-test-secret-0123"])
    data = data_fixture(shop)
    request_refund(Source.objects.create(slug="shop-api", kind="api"), order="ord_csp")
    approval = Approval.objects.get()
    route = Route.objects.order_by("pk").first()
    assert route is not None
    return [
        reverse("admin:index"),
        reverse("admin:events_event_changelist"),
        reverse("admin:events_event_changelist") + "?q=ord&received_at__last=24h",
        reverse("admin:events_event_change", args=[data["cancelled"].pk]),
        reverse("admin:events_delivery_change", args=[data["dead_old"].pk]),
        reverse("admin:events_deadletter_changelist"),
        reverse("admin:handlers_approval_changelist"),
        reverse("admin:handlers_approval_change", args=[approval.pk]),
        reverse("admin:events_route_change", args=[route.pk]),
        reverse("admin:events_source_add"),
        reverse("admin:events_apitoken_add"),
        reverse("admin:events_schedule_changelist"),
        reverse("admin:handlers_agentusage_changelist"),
        reverse("admin:events_replay_changelist"),
        reverse("admin:events_replay_new"),
    ]


def test_the_admin_pages_work_under_the_content_security_policy(
    browser: Any, live_server: Any, superuser: User, pages: list[str], settings: Any
) -> None:
    session = log_in(browser, live_server.url, superuser)
    policies = {}
    for url in pages:
        response = session.visit(f"{live_server.url}{url}")
        assert response.status == 200, url
        policies[url] = response.headers.get("content-security-policy")
        # the admin's own scripts ran: its sidebar toggle is wired up
    session.page.wait_for_timeout(200)

    assert session.problems == []
    assert set(policies.values()) == {settings.SWITCHYARD_CONTENT_SECURITY_POLICY}
    assert "script-src 'self'" in settings.SWITCHYARD_CONTENT_SECURITY_POLICY
    # nor inline styles: the pages need none (any left would be a violation above)
    assert "style-src 'self';" in settings.SWITCHYARD_CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in settings.SWITCHYARD_CONTENT_SECURITY_POLICY
