"""The failed invoices we know about: read from stored, signature-checked Stripe events.

The recovery email's recipient comes from here, never from the model: the newest stored
``stripe.invoice.payment_failed`` event for the invoice, from a source of kind ``stripe`` (so
its signature was checked against the Stripe signing secret). An event of that type published
by any other source (the API, a follow-up, a folder) is not evidence of anything and is
ignored, however new it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events.models import Event

FAILED_TYPE = "stripe.invoice.payment_failed"
# After one of these the invoice can no longer be paid or needs no reminder.
CLOSED_TYPES = {"stripe.invoice.paid": "paid", "stripe.invoice.voided": "voided"}
STRIPE_KIND = "stripe"

# Currencies Stripe counts in whole units (its "zero-decimal currencies" list).
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)


@dataclass(frozen=True)
class FailedInvoice:
    """What the recovery agent needs from a Stripe invoice object."""

    invoice_id: str
    number: str
    customer_email: str
    customer_name: str
    account_name: str
    amount_due: int
    currency: str
    attempt_count: int
    next_payment_attempt: int | None
    hosted_invoice_url: str
    lines: tuple[str, ...]

    @classmethod
    def from_event_payload(cls, payload: Any) -> FailedInvoice | None:
        """The invoice in a Stripe event's ``data.object``, or None if it holds none."""
        data = payload.get("data") if isinstance(payload, dict) else None
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict) or obj.get("object") != "invoice":
            return None
        invoice_id = _text(obj.get("id"))
        if not invoice_id:
            return None
        lines = obj.get("lines")
        items = lines.get("data") if isinstance(lines, dict) else None
        return cls(
            invoice_id=invoice_id,
            number=_text(obj.get("number")) or invoice_id,
            customer_email=_text(obj.get("customer_email")),
            customer_name=_text(obj.get("customer_name")),
            account_name=_text(obj.get("account_name")),
            amount_due=_int(obj.get("amount_due")) or 0,
            currency=_text(obj.get("currency")).lower(),
            attempt_count=_int(obj.get("attempt_count")) or 0,
            next_payment_attempt=_int(obj.get("next_payment_attempt")),
            hosted_invoice_url=_text(obj.get("hosted_invoice_url")),
            lines=tuple(
                _text(item.get("description"))[:200]
                for item in (items if isinstance(items, list) else [])[:5]
                if isinstance(item, dict) and _text(item.get("description"))
            ),
        )

    @property
    def amount(self) -> str:
        """``49.00 USD``: the amount due in the currency's major unit."""
        code = self.currency.upper() or "?"
        if self.currency in ZERO_DECIMAL:
            return f"{self.amount_due} {code}"
        return f"{self.amount_due / 100:.2f} {code}"

    @property
    def next_attempt_date(self) -> str | None:
        """The date of Stripe's next automatic retry (UTC), or None if none is scheduled."""
        if self.next_payment_attempt is None:
            return None
        return datetime.fromtimestamp(self.next_payment_attempt, UTC).strftime("%Y-%m-%d")


def _stripe_events(type: str, invoice_id: str) -> Any:
    # type + received_at: the index event_type_recv; the payload test runs on those rows only.
    return Event.objects.filter(
        type=type, source__kind=STRIPE_KIND, payload__data__object__id=invoice_id
    ).order_by("-received_at")


def find_failed_invoice(invoice_id: str) -> FailedInvoice | None:
    """The invoice as the newest Stripe-verified payment_failed event for it shows it."""
    event = _stripe_events(FAILED_TYPE, invoice_id).first()
    return FailedInvoice.from_event_payload(event.payload) if event is not None else None


def closed_as(invoice_id: str) -> str | None:
    """``"paid"`` or ``"voided"`` if Stripe has told us so since; None while it is open."""
    for type, state in CLOSED_TYPES.items():
        if _stripe_events(type, invoice_id).exists():
            return state
    return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
