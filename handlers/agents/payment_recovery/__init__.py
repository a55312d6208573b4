"""Payment recovery: a failed Stripe invoice payment -> a drafted recovery email, sent only
after a person approves it.

Triggered by ``stripe.invoice.payment_failed`` (the stripe webhook kind's event type). The
agent looks the invoice up and drafts the email with ``send_recovery_email``, which files an
Approval instead of sending; approving it sends the email once, to the billing email on the
invoice (never an address the model or the payload names). See docs/agents.md, "Payment
recovery".
"""

from __future__ import annotations

import re
from typing import Any

from handlers.context import HandlerContext
from handlers.errors import PermanentError
from handlers.llm import Agent, json_answer
from handlers.registry import handler

from . import prompt
from .invoices import FailedInvoice, closed_as, find_failed_invoice
from .offline import offline_plan
from .screening import current, filed_by, screen
from .tools import invoice_summary, send_recovery_email

HANDLER = "payments.recovery"
# Stripe invoice ids: "in_" and letters and digits. Anything else is not looked up.
INVOICE_ID_RE = re.compile(r"^in_[A-Za-z0-9]{1,120}$")

agent = Agent(
    name=HANDLER,
    system=prompt.SYSTEM,
    tools=[invoice_summary, send_recovery_email],
    max_tokens=1500,
    max_turns=5,
    offline=offline_plan,
)


def event_invoice_id(ctx: HandlerContext) -> str:
    invoice = FailedInvoice.from_event_payload(ctx.event.payload)
    if invoice is None:
        raise PermanentError("the event holds no Stripe invoice (data.object is not an invoice)")
    if not INVOICE_ID_RE.fullmatch(invoice.invoice_id):
        raise PermanentError(f"{invoice.invoice_id[:40]!r} is not a Stripe invoice id")
    return invoice.invoice_id


@handler(
    HANDLER,
    on=["stripe.invoice.payment_failed"],
    sources=["stripe"],
    max_attempts=4,
    time_limit=180,
    backoff_base=10.0,
    resources=["anthropic"],
)
def recover_payment(ctx: HandlerContext) -> dict[str, Any]:
    """Draft a recovery email for a failed invoice payment; it is sent once approved."""
    invoice_id = event_invoice_id(ctx)
    invoice = find_failed_invoice(invoice_id)
    skipped = None
    if invoice is None:
        # Published by a source that is not a signed Stripe webhook: nothing to act on.
        skipped = "no Stripe-verified invoice.payment_failed event for this invoice"
    elif closed := closed_as(invoice_id):
        skipped = f"the invoice is {closed} already"
    elif not invoice.customer_email:
        skipped = "the invoice has no billing email"
    if skipped:
        ctx.logger.info("payment recovery for %s skipped: %s", invoice_id, skipped)
        return {"invoice_id": invoice_id, "skipped": skipped}

    try:
        result = agent.run(ctx, prompt.INSTRUCTIONS)
        answer = json_answer(result.text, required=prompt.REQUIRED, choices=prompt.CHOICES)
    except Exception:
        # Drafts filed before the run failed are approvable now: screen them before re-raising.
        screen(filed_by(ctx.event.id, HANDLER), invoice_id=invoice_id, by=HANDLER)
        raise
    rejected = screen(result.approvals, invoice_id=invoice_id, by=HANDLER)
    outcome: dict[str, Any] = {
        "invoice_id": invoice_id,
        "summary": answer["summary"],
        "decision": answer["decision"],
        "reason": answer["reason"],
        **result.as_outcome(),
    }
    if result.approvals:
        outcome["approvals"] = current(result.approvals)
    if rejected:
        outcome["rejected_drafts"] = rejected
    return outcome
