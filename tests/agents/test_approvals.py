"""Approvals: a write marked requires_approval waits for a person; approving runs it once
(through an approval.approved event and its own delivery), rejecting ends it.

The agent is tests/testapp/approval_handlers.py; its refund tool writes a SideEffect row under
handlers.effects.once, so the number of rows is the number of refunds made.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events.delivery import execute
from events.models import Delivery, DeliveryStatus, Route, Source
from events.publish import internal_source, publish
from events.transitions import requeue
from handlers.approvals import APPROVED_TYPE, EXECUTOR, approve, reject
from handlers.models import Approval, ApprovalStatus, Step
from tests.testapp.approval_handlers import PAYMENTS_DOWN
from tests.testapp.models import SideEffect

from .conftest import FakeMessagesAPI

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(routes: None) -> Source:
    return Source.objects.create(slug="shop-api", kind="api")


def run(delivery: Delivery) -> Delivery:
    execute(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def request_refund(source: Source, order: str = "ord_1") -> Delivery:
    event = publish(source=source, type="test.refund_requested", payload={"order": order}).event
    return run(Delivery.objects.get(event=event, handler="test.refunder"))


def script_refund(fake_api: FakeMessagesAPI, order: str = "ord_1", amount: int = 500) -> None:
    fake_api.tool_use("refund", {"order": order, "amount": amount}, id="toolu_1")
    fake_api.text("The refund is waiting for approval.")


def executor_delivery(approval: Approval) -> Delivery:
    approval.refresh_from_db()
    assert approval.follow_up is not None
    return Delivery.objects.get(event=approval.follow_up, handler=EXECUTOR)


def test_the_write_waits_for_approval(fake_api: FakeMessagesAPI, source: Source) -> None:
    script_refund(fake_api)
    delivery = request_refund(source)

    assert delivery.status == DeliveryStatus.SUCCEEDED
    approval = Approval.objects.get()
    assert (approval.status, approval.agent, approval.tool) == (
        "pending",
        "test.refunder",
        "refund",
    )
    assert approval.input == {"order": "ord_1", "amount": 500}
    assert approval.delivery == delivery
    assert SideEffect.objects.count() == 0  # nothing acted
    # The model was told it is pending; the outcome and the trace say which approval.
    result = fake_api.requests[1].body["messages"][-1]["content"][0]
    assert result["is_error"] is False and '"status": "pending"' in result["content"]
    assert delivery.outcome["approvals"] == [
        {"id": approval.pk, "tool": "refund", "status": "pending"}
    ]
    tool_step = Step.objects.get(attempt__delivery=delivery, kind="tool")
    assert tool_step.name == "refund" and f'"approval": {approval.pk}' in tool_step.output


def test_approving_runs_the_write_once(fake_api: FakeMessagesAPI, source: Source) -> None:
    script_refund(fake_api)
    request_refund(source)
    approval = Approval.objects.get()

    assert approve(approval.pk, by="ops") is True
    assert approve(approval.pk, by="someone-else") is False  # decided already
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by) == (ApprovalStatus.APPROVED, "ops")
    assert approval.follow_up is not None and approval.follow_up.type == APPROVED_TYPE
    assert SideEffect.objects.count() == 0  # approving publishes; the delivery acts

    done = run(executor_delivery(approval))
    assert done.status == DeliveryStatus.SUCCEEDED
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.EXECUTED
    assert approval.result == {"refunded": "ord_1", "amount": 500}
    assert SideEffect.objects.filter(key=approval.idempotency_key).count() == 1

    # The same follow-up delivered again (a duplicate message, a requeue) does not act again.
    Delivery.objects.filter(pk=done.pk).update(status=DeliveryStatus.DEAD_LETTERED)
    assert requeue([done.pk]) == 1
    again = run(executor_delivery(approval))
    assert again.status == DeliveryStatus.SUCCEEDED
    assert again.outcome["already_executed"] is True
    assert SideEffect.objects.count() == 1


def test_a_rerun_of_the_agent_finds_its_approval_instead_of_asking_again(
    fake_api: FakeMessagesAPI, source: Source
) -> None:
    script_refund(fake_api)
    delivery = request_refund(source)
    approval = Approval.objects.get()
    approve(approval.pk, by="ops")
    run(executor_delivery(approval))

    # The original delivery runs again (requeued by an operator): the same call maps to the
    # same key, finds the executed approval, and the model hears it was carried out.
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD_LETTERED)
    requeue([delivery.pk])
    script_refund(fake_api)
    rerun = run(delivery)

    assert rerun.status == DeliveryStatus.SUCCEEDED
    assert Approval.objects.count() == 1
    assert SideEffect.objects.count() == 1
    told = fake_api.requests[-1].body["messages"][-1]["content"][0]["content"]
    assert '"status": "executed"' in told and '"refunded": "ord_1"' in told


def test_a_dead_lettered_approved_write_shows_so_and_runs_once_when_requeued(
    fake_api: FakeMessagesAPI, source: Source, admin_client: Client, monkeypatch: Any
) -> None:
    script_refund(fake_api)
    request_refund(source)
    approval = Approval.objects.get()
    approve(approval.pk, by="ops")
    Route.objects.filter(handler=EXECUTOR).update(max_attempts=2)
    monkeypatch.setitem(PAYMENTS_DOWN, "down", True)

    # a failure with an attempt left: retrying, the approval stays approved
    first = run(executor_delivery(approval))
    assert first.status == DeliveryStatus.RETRYING
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED
    Delivery.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
    dead = run(executor_delivery(approval))

    # its last attempt failed: the delivery is dead-lettered and the approval says failed
    assert dead.status == DeliveryStatus.DEAD_LETTERED
    assert "payments API unreachable" in dead.last_error
    approval.refresh_from_db()
    assert (approval.status, approval.reason) == (
        ApprovalStatus.FAILED,
        "payments API unreachable",
    )
    # (a follow-up dead-lettered without the handler seeing its last attempt, a lost worker,
    # leaves the row approved: the list says what happened)
    Approval.objects.filter(pk=approval.pk).update(status=ApprovalStatus.APPROVED)
    listing = admin_client.get(reverse("admin:handlers_approval_changelist")).content.decode()
    assert "approved, carrying it out was dead-lettered (requeue it)" in listing

    # the outage is over; an operator requeues the dead letter: the write runs, once
    monkeypatch.setitem(PAYMENTS_DOWN, "down", False)
    assert requeue([dead.pk]) == 1
    done = run(executor_delivery(approval))
    assert done.status == DeliveryStatus.SUCCEEDED
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.EXECUTED
    assert SideEffect.objects.count() == 1


def test_rejecting_ends_it_and_nothing_runs(fake_api: FakeMessagesAPI, source: Source) -> None:
    script_refund(fake_api)
    request_refund(source)
    approval = Approval.objects.get()

    assert reject(approval.pk, by="ops", reason="customer already refunded by phone") is True
    assert approve(approval.pk, by="ops") is False  # a rejected approval stays rejected
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.REJECTED
    assert approval.reason == "customer already refunded by phone"
    assert approval.follow_up is None
    assert not Delivery.objects.filter(handler=EXECUTOR).exists()
    assert SideEffect.objects.count() == 0


def test_a_forged_approval_event_runs_nothing(fake_api: FakeMessagesAPI, source: Source) -> None:
    """Anyone who can publish an approval.approved event still cannot run a write nobody
    approved: the executor checks the approval row."""
    script_refund(fake_api)
    request_refund(source)
    approval = Approval.objects.get()
    forged = publish(
        source=internal_source(), type=APPROVED_TYPE, payload={"approval": approval.pk}
    ).event

    delivery = run(Delivery.objects.get(event=forged, handler=EXECUTOR))

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert "is pending, not approved" in delivery.last_error
    assert SideEffect.objects.count() == 0
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_offline_provider_files_the_same_approval(settings: Any, source: Source) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    delivery = request_refund(source, order="ord_9")

    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.outcome["provider"] == "offline"
    approval = Approval.objects.get()
    assert (approval.status, approval.input) == ("pending", {"order": "ord_9", "amount": 500})
    approve(approval.pk, by="ops")
    run(executor_delivery(approval))
    assert SideEffect.objects.count() == 1


# --- the admin ----------------------------------------------------------------------------


@pytest.fixture
def pending(settings: Any, source: Source) -> Approval:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    request_refund(source, order="ord_admin")
    return Approval.objects.get()


def decide_url(approval: Approval) -> str:
    return reverse("admin:handlers_approval_decide", args=[approval.pk])


def test_admin_page_shows_the_request_and_approves(admin_client: Client, pending: Approval) -> None:
    page = admin_client.get(reverse("admin:handlers_approval_change", args=[pending.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "ord_admin" in html and "Approve" in html and "Reject" in html
    assert "Refund 500 cents on order ord_admin" in html  # the tool's preview

    response = admin_client.post(decide_url(pending), {"decision": "approve"}, follow=True)

    assert [str(m) for m in response.context["messages"]] == [
        f"Approved {pending.pk}. Each write runs once, as its own delivery."
    ]
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.APPROVED and pending.decided_by == "admin"
    assert Delivery.objects.filter(handler=EXECUTOR).count() == 1


def test_admin_reject_keeps_the_reason(admin_client: Client, pending: Approval) -> None:
    response = admin_client.post(
        decide_url(pending), {"decision": "reject", "reason": "not this one"}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == [f"Rejected {pending.pk}."]
    pending.refresh_from_db()
    assert (pending.status, pending.reason) == (ApprovalStatus.REJECTED, "not this one")

    # Deciding again is refused with a message, and changes nothing.
    response = admin_client.post(decide_url(pending), {"decision": "approve"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["1 no longer pending, left alone."]
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.REJECTED


def test_admin_bulk_approve(admin_client: Client, settings: Any, source: Source) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    for order in ("a", "b"):
        request_refund(source, order=order)
    ids = list(Approval.objects.values_list("pk", flat=True))

    admin_client.post(
        reverse("admin:handlers_approval_changelist"),
        {"action": "approve_selected", "_selected_action": ids},
    )

    assert set(Approval.objects.values_list("status", flat=True)) == {"approved"}
    assert Delivery.objects.filter(handler=EXECUTOR).count() == 2


def test_admin_decisions_need_the_change_permission(client: Client, pending: Approval) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_approval"))
    client.force_login(viewer)
    assert (
        client.get(reverse("admin:handlers_approval_change", args=[pending.pk])).status_code == 200
    )

    assert client.post(decide_url(pending), {"decision": "approve"}).status_code == 403
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.PENDING


def test_only_those_who_may_decide_see_the_approve_and_reject_buttons(
    client: Client, admin_client: Client, pending: Approval
) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_approval"))
    client.force_login(viewer)
    page = reverse("admin:handlers_approval_change", args=[pending.pk])
    changelist = reverse("admin:handlers_approval_changelist")

    as_viewer = client.get(page).content.decode()
    as_admin = admin_client.get(page).content.decode()

    buttons = (">Approve</button>", ">Reject</button>", decide_url(pending))
    assert [b in as_viewer for b in buttons] == [False, False, False]
    assert [b in as_admin for b in buttons] == [True, True, True]
    assert "approve_selected" not in client.get(changelist).content.decode()
    assert "approve_selected" in admin_client.get(changelist).content.decode()


def test_admin_decide_refuses_get_and_unknown_choices(
    admin_client: Client, pending: Approval
) -> None:
    assert admin_client.get(decide_url(pending)).status_code == 405
    response = admin_client.post(decide_url(pending), {"decision": "maybe"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Choose approve or reject."]
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.PENDING


def test_an_approved_write_whose_tool_is_gone_ends_failed_not_approved(
    fake_api: FakeMessagesAPI, source: Source
) -> None:
    """The executor cannot run it (the agent or tool left this deployment): the approval must
    reach a final state with the reason, not stay "approved (running)" for ever."""
    script_refund(fake_api)
    request_refund(source)
    approval = Approval.objects.get()
    Approval.objects.filter(pk=approval.pk).update(agent="test.retired_agent")
    approve(approval.pk, by="ops")

    done = run(executor_delivery(approval))

    assert done.status == DeliveryStatus.DEAD_LETTERED
    expected = "agent 'test.retired_agent' has no tool 'refund' in this deployment"
    assert done.last_error == expected
    approval.refresh_from_db()
    assert (approval.status, approval.reason) == (ApprovalStatus.FAILED, expected)
    assert SideEffect.objects.count() == 0


def test_the_admin_never_shows_a_secret_held_in_an_approvals_input(
    admin_client: Client, settings: Any, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An offline plan builds tool input from the raw payload, and the write needs the real
    value, so the row keeps it; the page shows it redacted, as the step's trace does."""
    secret = "sk-live-approval-input-0123456789"
    monkeypatch.setenv("SHOP_API_KEY", secret)
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    delivery = request_refund(source, order=secret)
    approval = Approval.objects.get()
    assert approval.input["order"] == secret
    assert secret not in str(Step.objects.get(attempt__delivery=delivery, kind="tool").input)

    page = admin_client.get(reverse("admin:handlers_approval_change", args=[approval.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert secret not in html
    assert "&quot;order&quot;: &quot;[redacted]&quot;" in html
    assert "Refund 500 cents on order [redacted]" in html

    # carried out, the write gets the real value; the stored result and outcome do not
    approve(approval.pk, by="ops")
    done = run(executor_delivery(approval))
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.EXECUTED
    assert SideEffect.objects.count() == 1
    assert approval.result == {"refunded": "[redacted]", "amount": 500}
    assert secret not in json.dumps(done.outcome)
