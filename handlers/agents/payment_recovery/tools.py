"""The recovery agent's tools: look a failed invoice up, and send the recovery email.

``send_recovery_email`` takes no recipient. It addresses the customer on the invoice itself
(``invoices.find_failed_invoice``), so nothing the model writes, and nothing in a payload it
read, can send the email anywhere else. It requires approval: during the run it only files an
Approval with the drafted subject and body, and it sends when the approved action runs, once
per invoice and payment attempt (``handlers.effects.once`` under ``recovery_key``): however
many events describe one failure, and however many drafts of it are approved, the customer
gets one email for it.
"""

from __future__ import annotations

import hashlib
import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import BadHeaderError, EmailMessage
from django.utils import timezone

from handlers.effects import once
from handlers.errors import PermanentError, TransientError
from handlers.llm import tool

from . import conf
from .invoices import FailedInvoice, closed_as, find_failed_invoice

MAX_SUBJECT_CHARS = 150
MAX_BODY_CHARS = 5000


def check_draft(subject: str, body: str) -> str | None:
    """What is wrong with a drafted email, or None. Shared by the send tool and the handler's
    screening of the approvals a run filed."""
    if not subject.strip():
        return "the subject is empty"
    if "\n" in subject or "\r" in subject:
        return "the subject must be one line"
    if len(subject) > MAX_SUBJECT_CHARS:
        return f"the subject is longer than {MAX_SUBJECT_CHARS} characters"
    if not body.strip():
        return "the body is empty"
    if len(body) > MAX_BODY_CHARS:
        return f"the body is longer than {MAX_BODY_CHARS} characters"
    return None


def from_address() -> str:
    """SWITCHYARD_RECOVERY_FROM, else DEFAULT_FROM_EMAIL."""
    return str(conf.RECOVERY_FROM.get() or settings.DEFAULT_FROM_EMAIL)


def recovery_key(invoice: FailedInvoice) -> str:
    """What one recovery email is about: the invoice and the payment attempt that failed, as
    the newest Stripe-verified event for the invoice says, never as a run or an event does."""
    return f"payments.recovery.email:{invoice.invoice_id}:attempt:{invoice.attempt_count}"


def unknown_invoice(invoice_id: str) -> str:
    return f"no Stripe invoice.payment_failed event is stored for invoice {invoice_id!r}"


@tool(kind="read")
def invoice_summary(invoice_id: str) -> dict[str, Any]:
    """Look up a failed Stripe invoice: amount, retry schedule, customer name, payment link.

    Args:
        invoice_id: The Stripe invoice id (in_...).
    """
    invoice = find_failed_invoice(invoice_id)
    if invoice is None:
        raise LookupError(unknown_invoice(invoice_id))
    return {
        "invoice_id": invoice.invoice_id,
        "number": invoice.number,
        "state": closed_as(invoice_id) or "open",
        "amount_due": invoice.amount,
        "attempt_count": invoice.attempt_count,
        "next_automatic_retry": invoice.next_attempt_date,
        "customer_name": invoice.customer_name,
        "seller": invoice.account_name,
        "payment_link": invoice.hosted_invoice_url,
        "items": list(invoice.lines),
        "recipient": "the billing email on the invoice; send_recovery_email addresses it",
    }


def preview_email(arguments: dict[str, Any]) -> str:
    """The email as it would go out, recipient included, for the approval's page."""
    invoice_id = str(arguments.get("invoice_id", ""))
    invoice = find_failed_invoice(invoice_id)
    if invoice is None:
        return f"Nothing: {unknown_invoice(invoice_id)}."
    closed = closed_as(invoice_id)
    lines = [
        f"From: {from_address()}",
        f"To: {invoice.customer_email or '(no billing email: it will be refused)'}",
        f"Subject: {arguments.get('subject', '')}",
        "",
        str(arguments.get("body", "")),
    ]
    if closed:
        lines.insert(0, f"Invoice {invoice_id} is {closed}: approving sends nothing.\n")
    return "\n".join(lines)


@tool(kind="write", requires_approval=True, preview=preview_email)
def send_recovery_email(
    invoice_id: str, subject: str, body: str, idempotency_key: str
) -> dict[str, Any]:
    """Email the invoice's customer about the failed payment (waits for a person's approval).

    Args:
        invoice_id: The Stripe invoice id (in_...). The email goes to the billing email on
            this invoice; no other recipient is possible.
        subject: The subject line, one line, at most 150 characters.
        body: The plain-text body, at most 5000 characters.
    """

    # Not ``idempotency_key`` (the approved run's): two approved drafts of one failure are
    # two runs, and must still be one email.
    invoice = find_failed_invoice(invoice_id)
    if invoice is None:
        raise PermanentError(f"recovery email refused: {unknown_invoice(invoice_id)}")
    key = recovery_key(invoice)

    def act() -> dict[str, Any]:
        # Checked here, inside once(): an email already sent is reported as sent, even if the
        # invoice was paid after it.
        problem = check_draft(subject, body)
        if problem:
            raise PermanentError(f"recovery email refused: {problem}")
        closed = closed_as(invoice_id)
        if closed:
            raise PermanentError(f"recovery email refused: invoice {invoice_id} is {closed}")
        if not invoice.customer_email:
            raise PermanentError(f"recovery email refused: invoice {invoice_id} has no email")
        return send(invoice, subject, body, key)

    result: dict[str, Any] = once(key, act)
    return result


def send(invoice: FailedInvoice, subject: str, body: str, idempotency_key: str) -> dict[str, Any]:
    """Send through Django's email backend; SMTP and network failures are retried."""
    sender = from_address()
    domain = sender.rpartition("@")[2].strip("> ") or "switchyard.invalid"
    # The same key gives the same Message-ID: mail systems that dedupe on it (and people
    # reading their inbox) see a copy sent in the narrow crash window as one message.
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    message_id = f"<recovery.{digest}@{domain}>"
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=sender,
        to=[invoice.customer_email],
        headers={"Message-ID": message_id, "X-Switchyard-Invoice": invoice.invoice_id},
    )
    try:
        message.send(fail_silently=False)
    except BadHeaderError as exc:
        raise PermanentError(f"recovery email refused: {exc}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientError(f"sending the recovery email failed: {exc}") from exc
    return {
        "sent": True,
        "invoice_id": invoice.invoice_id,
        "to": invoice.customer_email,
        "subject": subject,
        "message_id": message_id,
        "sent_at": timezone.now().isoformat(),
    }
