"""The recovery agent without a model: a template email from the invoice's own fields.

Deterministic (same invoice, same draft), so ``make demo`` files the same approval a model
would, with text a person can read and approve.
"""

from __future__ import annotations

import json

from handlers.context import HandlerContext
from handlers.errors import PermanentError
from handlers.llm import OfflinePlan

from .invoices import FailedInvoice, find_failed_invoice

# From this attempt on (or when Stripe schedules no more retries) the wording says so.
FINAL_ATTEMPT = 3


def invoice_for(ctx: HandlerContext) -> FailedInvoice:
    """The event's invoice as stored (the handler checked it exists), else as in the payload."""
    from_payload = FailedInvoice.from_event_payload(ctx.event.payload)
    if from_payload is None:
        raise PermanentError("the event holds no Stripe invoice")
    return find_failed_invoice(from_payload.invoice_id) or from_payload


def draft(invoice: FailedInvoice) -> tuple[str, str]:
    """(subject, body) of the recovery email."""
    seller = invoice.account_name or "our billing team"
    first_name = invoice.customer_name.split()[0] if invoice.customer_name else "there"
    final = invoice.next_payment_attempt is None or invoice.attempt_count >= FINAL_ATTEMPT
    subject = f"Your payment for invoice {invoice.number} didn't go through"
    if final:
        subject = f"Action needed: {subject[0].lower()}{subject[1:]}"
        next_step = (
            "No more automatic attempts are scheduled, so please pay the invoice or update "
            "your payment method here:"
        )
    else:
        next_step = (
            f"We'll try again on {invoice.next_attempt_date}. To avoid any interruption, "
            "please check or update your payment method before then:"
        )
    link = invoice.hosted_invoice_url or "(sign in to your account to update your card)"
    body = (
        f"Hi {first_name},\n\n"
        f"We tried to collect {invoice.amount} for invoice {invoice.number} from {seller}, "
        "but the payment didn't go through.\n\n"
        f"{next_step}\n{link}\n\n"
        "If you've already sorted this out, you can ignore this message.\n\n"
        f"Thanks,\n{seller}\n"
    )
    return subject, body


def offline_plan(ctx: HandlerContext) -> OfflinePlan:
    invoice = invoice_for(ctx)
    subject, body = draft(invoice)
    retry = (
        f"Stripe retries on {invoice.next_attempt_date}"
        if invoice.next_attempt_date
        else "no automatic retry is scheduled"
    )
    answer = {
        "summary": (
            f"{invoice.customer_name or 'A customer'}'s payment of {invoice.amount} for invoice "
            f"{invoice.number} failed (attempt {invoice.attempt_count}); {retry}."
        ),
        "decision": "email",
        "reason": "The invoice is open and has a billing email, so a reminder may recover it.",
    }
    return OfflinePlan(
        text=json.dumps(answer),
        calls=[
            ("invoice_summary", {"invoice_id": invoice.invoice_id}),
            (
                "send_recovery_email",
                {"invoice_id": invoice.invoice_id, "subject": subject, "body": body},
            ),
        ],
    )
