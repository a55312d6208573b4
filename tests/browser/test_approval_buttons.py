"""Approving in the browser: a view-only member of staff sees the approval but no buttons; one
who may decide presses Approve and the write is carried out."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from events.models import Source
from handlers.models import Approval, ApprovalStatus
from tests.agents.test_approvals import request_refund

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pending(routes: None, settings: Any) -> Approval:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    request_refund(Source.objects.create(slug="shop-api", kind="api"), order="ord_browser")
    return Approval.objects.get()


def test_a_viewer_sees_the_approval_but_no_buttons(
    browser: Any, live_server: Any, viewer: User, pending: Approval
) -> None:
    session = log_in(browser, live_server.url, viewer)

    session.visit(live_server.url + reverse("admin:handlers_approval_change", args=[pending.pk]))

    page = session.page
    assert page.get_by_text("ord_browser").count() >= 1
    assert page.get_by_role("button", name="Approve").count() == 0
    assert page.get_by_role("button", name="Reject").count() == 0
    assert session.problems == []


def test_an_operator_approves_with_the_button(
    browser: Any, live_server: Any, superuser: User, pending: Approval
) -> None:
    session = log_in(browser, live_server.url, superuser)
    session.visit(live_server.url + reverse("admin:handlers_approval_change", args=[pending.pk]))

    session.page.get_by_role("button", name="Approve").click()
    session.page.wait_for_load_state("load")

    assert session.page.locator("ul.messagelist").inner_text() == (
        f"Approved {pending.pk}. Each write runs once, as its own delivery."
    )
    pending.refresh_from_db()
    assert pending.status in (ApprovalStatus.APPROVED, ApprovalStatus.EXECUTED)
    assert session.problems == []
