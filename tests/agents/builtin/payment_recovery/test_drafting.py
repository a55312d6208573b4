"""Payment recovery (handlers/agents/payment_recovery), up to the draft: a failed Stripe invoice
payment, posted signed to /hooks/<slug>, becomes a drafted email that waits for approval;
drafts for another invoice are rejected before anyone sees them, and only Stripe-verified
events are drafted for."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail

from events.models import Delivery, DeliveryStatus, Route, Source
from events.publish import publish
from handlers.approvals import approve
from handlers.models import Approval, ApprovalStatus, Step

from ...conftest import FakeMessagesAPI
from .helpers import (
    ANSWER,
    ATTACKER,
    BODY,
    CUSTOMER,
    INVOICE,
    SUBJECT,
    executor_for,
    post_signed,
    run,
    script_recovery,
    stripe_event,
)

pytestmark = pytest.mark.django_db


def test_a_failed_payment_drafts_an_email_that_waits_for_approval(
    fake_api: FakeMessagesAPI, stripe_source: Source
) -> None:
    # given the model looks the invoice up and drafts the email
    script_recovery(fake_api)

    # when Stripe posts invoice.payment_failed
    delivery = run(post_signed(stripe_event()))

    # then the draft waits for a person and nothing is sent
    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    approval = Approval.objects.get()
    assert (approval.agent, approval.tool, approval.status) == (
        "payments.recovery",
        "send_recovery_email",
        ApprovalStatus.PENDING,
    )
    assert approval.input == {"invoice_id": INVOICE, "subject": SUBJECT, "body": BODY}
    assert mail.outbox == []
    outcome = delivery.outcome
    assert {k: outcome[k] for k in ("invoice_id", "summary", "decision", "reason")} == {
        "invoice_id": INVOICE,
        **ANSWER,
    }
    assert outcome["provider"] == "anthropic" and outcome["turns"] == 3
    assert outcome["approvals"] == [
        {"id": approval.pk, "tool": "send_recovery_email", "status": "pending"}
    ]
    steps = Step.objects.filter(attempt__delivery=delivery).order_by("number")
    assert [(s.kind, s.name) for s in steps] == [
        ("llm", "claude-sonnet-5-5"),
        ("tool", "invoice_summary"),
        ("llm", "claude-sonnet-5-5"),
        ("tool", "send_recovery_email"),
        ("llm", "claude-sonnet-5-5"),
    ]
    looked_up = json.loads(steps[1].output)
    assert looked_up == {
        "invoice_id": INVOICE,
        "number": "5C1A9E07-0012",
        "state": "open",
        "amount_due": "49.00 USD",
        "attempt_count": 1,
        "next_automatic_retry": "2025-12-04",
        "customer_name": "Dana Whitfield",
        "seller": "Northwind Analytics",
        "payment_link": stripe_event()["data"]["object"]["hosted_invoice_url"],
        "items": [stripe_event()["data"]["object"]["lines"]["data"][0]["description"]],
        "recipient": "the billing email on the invoice; send_recovery_email addresses it",
    }
    # The model was told the write is pending, not done.
    told = fake_api.requests[2].body["messages"][-1]["content"][0]
    assert told["is_error"] is False and '"status": "pending"' in told["content"]


def test_a_draft_for_another_invoice_is_rejected_before_anyone_sees_it(
    fake_api: FakeMessagesAPI, stripe_source: Source
) -> None:
    # given another customer's failed invoice is on record too (its own run not shown)
    other = stripe_event(id="evt_other", invoice={"id": "in_other", "customer_email": ATTACKER})
    publish(source=stripe_source, type="stripe.invoice.payment_failed", payload=other)
    script_recovery(fake_api, draft={"invoice_id": "in_other", "subject": SUBJECT, "body": BODY})

    delivery = run(post_signed(stripe_event()))

    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    approval = Approval.objects.get()
    assert approval.status == ApprovalStatus.REJECTED
    expected = f"drafted for invoice 'in_other', but the failed payment is invoice {INVOICE!r}"
    assert approval.reason == f"refused by payments.recovery: {expected}"
    assert delivery.outcome["rejected_drafts"] == [{"approval": approval.pk, "reason": expected}]
    assert delivery.outcome["approvals"][0]["status"] == "rejected"
    assert approve(approval.pk, by="ops") is False
    assert mail.outbox == []


def test_an_api_event_of_the_stripe_type_gets_no_recovery_delivery(stripe_source: Source) -> None:
    api = Source.objects.create(slug="api", kind="api")
    event = publish(source=api, type="stripe.invoice.payment_failed", payload=stripe_event()).event

    assert not Delivery.objects.filter(event=event, handler="payments.recovery").exists()


def test_an_unverified_event_given_to_the_handler_anyway_is_skipped_without_calling_the_model(
    fake_api: FakeMessagesAPI, stripe_source: Source
) -> None:
    """The handler's own check, behind routing's: a delivery made by hand for an API event
    (routing would make none) finds no Stripe-verified event for the invoice."""
    api = Source.objects.create(slug="api", kind="api")
    event = publish(source=api, type="stripe.invoice.payment_failed", payload=stripe_event()).event
    route = Route.objects.get(handler="payments.recovery")
    made = Delivery.objects.create(event=event, route=route, handler=route.handler)

    delivery = run(made)

    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.outcome == {
        "invoice_id": INVOICE,
        "skipped": "no Stripe-verified invoice.payment_failed event for this invoice",
    }
    assert fake_api.requests == []


def test_offline_provider_drafts_from_the_invoice(settings: Any, stripe_source: Source) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"

    delivery = run(post_signed(stripe_event()))

    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    outcome = delivery.outcome
    assert outcome["provider"] == "offline" and outcome["text"].startswith("[offline provider] ")
    assert outcome["decision"] == "email"
    assert outcome["summary"] == (
        "Dana Whitfield's payment of 49.00 USD for invoice 5C1A9E07-0012 failed (attempt 1); "
        "Stripe retries on 2025-12-04."
    )
    approval = Approval.objects.get()
    assert approval.input["subject"] == "Your payment for invoice 5C1A9E07-0012 didn't go through"
    assert approval.input["body"].startswith(
        "Hi Dana,\n\nWe tried to collect 49.00 USD for invoice 5C1A9E07-0012 from Northwind "
        "Analytics, but the payment didn't go through.\n\nWe'll try again on 2025-12-04."
    )
    approve(approval.pk, by="ops")
    run(executor_for(approval))
    assert [m.to for m in mail.outbox] == [[CUSTOMER]]


def test_offline_draft_says_when_no_retry_is_left(settings: Any, stripe_source: Source) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    document = stripe_event(invoice={"attempt_count": 4, "next_payment_attempt": None})

    run(post_signed(document))

    draft = Approval.objects.get().input
    assert (
        draft["subject"]
        == "Action needed: your payment for invoice 5C1A9E07-0012 didn't go through"
    )
    assert "No more automatic attempts are scheduled" in draft["body"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param("I drafted the email.", "the answer holds no JSON object", id="prose"),
        pytest.param(
            json.dumps({**ANSWER, "decision": "maybe"}),
            "the answer's 'decision' is 'maybe', not one of ['email', 'no_email']",
            id="bad-choice",
        ),
    ],
)
def test_a_bad_answer_is_dead_lettered_with_the_reason(
    fake_api: FakeMessagesAPI, stripe_source: Source, answer: str, reason: str
) -> None:
    fake_api.tool_use("invoice_summary", {"invoice_id": INVOICE}, id="toolu_1")
    fake_api.text(answer)

    delivery = run(post_signed(stripe_event()))

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.error_class == "handlers.llm.answers.AnswerFormatError"
    assert delivery.last_error.startswith(reason)
    assert mail.outbox == []


def test_a_run_that_fails_after_drafting_still_screens_its_drafts(
    fake_api: FakeMessagesAPI, stripe_source: Source
) -> None:
    # given a run that drafts for another customer's invoice and then answers badly
    other = stripe_event(id="evt_other", invoice={"id": "in_other", "customer_email": ATTACKER})
    publish(source=stripe_source, type="stripe.invoice.payment_failed", payload=other)
    fake_api.tool_use(
        "send_recovery_email",
        {"invoice_id": "in_other", "subject": SUBJECT, "body": BODY},
        id="toolu_1",
    )
    fake_api.text("I emailed them.")

    delivery = run(post_signed(stripe_event()))

    # then the delivery is dead-lettered, and the draft did not stay pending for someone to
    # approve: it was rejected with the reason like any other run's
    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    approval = Approval.objects.get()
    assert approval.status == ApprovalStatus.REJECTED
    assert approval.reason == (
        "refused by payments.recovery: drafted for invoice 'in_other', but the failed payment "
        f"is invoice {INVOICE!r}"
    )
    assert mail.outbox == []


def test_an_injected_draft_filed_first_does_not_crowd_out_the_real_one(
    fake_api: FakeMessagesAPI, stripe_source: Source
) -> None:
    # given the model drafts for another invoice first, then the right draft
    other = stripe_event(id="evt_other", invoice={"id": "in_other", "customer_email": ATTACKER})
    publish(source=stripe_source, type="stripe.invoice.payment_failed", payload=other)
    fake_api.tool_use(
        "send_recovery_email",
        {"invoice_id": "in_other", "subject": SUBJECT, "body": BODY},
        id="toolu_1",
    )
    fake_api.tool_use(
        "send_recovery_email", {"invoice_id": INVOICE, "subject": SUBJECT, "body": BODY}, id="t2"
    )
    fake_api.text(json.dumps(ANSWER))

    delivery = run(post_signed(stripe_event()))

    # then only the wrong one is rejected; the right one waits for a person
    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    wrong, right = Approval.objects.order_by("pk")
    assert (wrong.input["invoice_id"], wrong.status) == ("in_other", ApprovalStatus.REJECTED)
    assert (right.input["invoice_id"], right.status) == (INVOICE, ApprovalStatus.PENDING)
