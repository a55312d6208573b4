"""The offline provider's triage: keyword rules over the ticket's subject and description."""

from __future__ import annotations

import re
from typing import Any

# First match wins, in this order: a refund for a crash is a billing matter.
CATEGORY_WORDS: list[tuple[str, re.Pattern[str]]] = [
    (
        "billing",
        re.compile(
            r"\b(invoices?|refunds?|charged?|charges|payments?|billing|card|subscriptions?|"
            r"plan|pricing|receipts?)\b",
            re.I,
        ),
    ),
    (
        "account",
        re.compile(
            r"\b(log ?in|sign ?in|password|2fa|mfa|locked out|account|sso|invite|"
            r"permissions?)\b",
            re.I,
        ),
    ),
    (
        "bug",
        re.compile(
            r"\b(bug|error|crash\w*|broken|fails?|failing|exception|500|not working|"
            r"doesn't work|stopped working)\b",
            re.I,
        ),
    ),
    (
        "feature_request",
        re.compile(r"\b(feature|would be (nice|great)|could you add|wish|support for)\b", re.I),
    ),
]
URGENT = re.compile(
    r"\b(outage|down for|production is down|data loss|security|breach|urgent)\b", re.I
)
HIGH = re.compile(
    r"\b(blocked|cannot|can't|unable|charged twice|double charged|twice|asap|month end)\b", re.I
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def ticket(payload: Any) -> dict[str, Any]:
    """The payload's ``ticket`` object, or an empty one."""
    return _dict(_dict(payload).get("ticket"))


def triage(payload: Any) -> dict[str, Any]:
    """A triage in the shape the model is asked for (see prompt.INSTRUCTIONS)."""
    fields = ticket(payload)
    subject = str(fields.get("subject") or "").strip()
    description = str(fields.get("description") or "").strip()
    text = f"{subject}\n{description}"
    category = next((name for name, words in CATEGORY_WORDS if words.search(text)), "other")
    if URGENT.search(text):
        priority = "urgent"
    elif HIGH.search(text):
        priority = "high"
    elif category == "feature_request":
        priority = "low"
    else:
        priority = "normal"
    requester = _dict(fields.get("requester"))
    who = str(requester.get("name") or requester.get("email") or "A customer")
    first_line = description.splitlines()[0] if description else ""
    summary = f"{who}: {subject or first_line or 'no subject'}"
    return {"summary": summary[:300], "category": category, "priority": priority}


def requester_email(payload: Any) -> str:
    email = _dict(ticket(payload).get("requester")).get("email")
    return email.strip() if isinstance(email, str) else ""
