"""The Stripe event, the signed POST and the scripted model run the payment recovery tests
share."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.test import Client

from events.delivery import execute
from events.models import Delivery
from events.webhooks.stripe import sign
from handlers.agents import payment_recovery
from handlers.approvals import EXECUTOR
from handlers.models import Approval

from ...conftest import FakeMessagesAPI

FIXTURE = Path(payment_recovery.__file__).parent / "fixtures" / "invoice.payment_failed.json"
SECRET = "whsec_recovery_test_secret"
INVOICE = "in_1SZbX2LkdIwHu7ixQf3mT9aB"
CUSTOMER = "dana.whitfield@example.com"
ATTACKER = "attacker@example.com"
SUBJECT = "Your Northwind Analytics payment didn't go through"
BODY = (
    "Hi Dana,\n\nWe couldn't collect 49.00 USD for invoice 5C1A9E07-0012. We'll retry on "
    "2025-12-04; you can update your card here:\nhttps://invoice.stripe.com/i/...\n\nThanks,\n"
    "Northwind Analytics\n"
)
ANSWER = {
    "summary": "Dana Whitfield's 49.00 USD payment failed; Stripe retries on 2025-12-04.",
    "decision": "email",
    "reason": "The invoice is open and a reminder may recover it before the retry.",
}


def stripe_event(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FIXTURE.read_text())
    document["data"]["object"].update(changes.pop("invoice", {}))
    document.update(changes)
    return document


def post_signed(document: dict[str, Any]) -> Delivery:
    """POST the event to /hooks/pay signed as Stripe signs it; the recovery delivery."""
    body = json.dumps(document, indent=2).encode()
    response = Client().post(
        "/hooks/pay",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": sign(SECRET, body, int(time.time()))},
    )
    assert response.status_code == 202, response.content
    return Delivery.objects.get(event__external_id=document["id"], handler="payments.recovery")


def run(delivery: Delivery) -> Delivery:
    execute(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def script_recovery(
    fake_api: FakeMessagesAPI, draft: dict[str, Any] | None = None, answer: Any = None
) -> None:
    fake_api.tool_use("invoice_summary", {"invoice_id": INVOICE}, id="toolu_1")
    fake_api.tool_use(
        "send_recovery_email",
        draft or {"invoice_id": INVOICE, "subject": SUBJECT, "body": BODY},
        id="toolu_2",
    )
    fake_api.text(f"Drafted.\n```json\n{json.dumps(answer or ANSWER)}\n```")


def executor_for(approval: Approval) -> Delivery:
    approval.refresh_from_db()
    assert approval.follow_up is not None
    return Delivery.objects.get(event=approval.follow_up, handler=EXECUTOR)
