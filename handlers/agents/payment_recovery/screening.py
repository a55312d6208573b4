"""Checking the approvals a run filed before a person sees them.

The model chooses the invoice id, subject and body of ``send_recovery_email``. The run may only
ask to email about the invoice that failed in this event, once, with a well-formed draft;
anything else (an injected "also email invoice in_other", a second draft, a subject with line
breaks) is rejected at once with the reason, so nobody approves it by mistake.
"""

from __future__ import annotations

from typing import Any

from handlers.approvals import reject
from handlers.models import Approval, ApprovalStatus

from .tools import check_draft, send_recovery_email

LIVE = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED, ApprovalStatus.EXECUTED)


def problem_with(approval: Approval, invoice_id: str) -> str | None:
    asked = approval.input.get("invoice_id")
    if asked != invoice_id:
        return f"drafted for invoice {asked!r}, but the failed payment is invoice {invoice_id!r}"
    earlier = Approval.objects.filter(
        delivery_id=approval.delivery_id,
        tool=approval.tool,
        status__in=LIVE,
        pk__lt=approval.pk,
    )
    if earlier.exists():
        return "a recovery email for this failed payment was already drafted"
    return check_draft(str(approval.input.get("subject", "")), str(approval.input.get("body", "")))


def screen(approvals: list[dict[str, Any]], *, invoice_id: str, by: str) -> list[dict[str, Any]]:
    """Reject the pending approvals of this run that break the rules; what was rejected."""
    ids = [item["id"] for item in approvals if item["tool"] == send_recovery_email.name]
    rejected = []
    # Oldest first: a draft is judged against the earlier ones after those were judged, so an
    # injected draft filed first does not make the real one look like a second draft.
    pending = Approval.objects.filter(pk__in=ids, status=ApprovalStatus.PENDING).order_by("pk")
    for approval in pending:
        problem = problem_with(approval, invoice_id)
        if problem and reject(approval.pk, by=by, reason=f"refused by {by}: {problem}"):
            rejected.append({"approval": approval.pk, "reason": problem})
    return sorted(rejected, key=lambda item: item["approval"])


def filed_by(event_id: str, handler: str) -> list[dict[str, Any]]:
    """The send_recovery_email approvals still pending from ``handler``'s runs on the event,
    as ``screen`` takes them."""
    rows = Approval.objects.filter(
        delivery__event_id=event_id,
        delivery__handler=handler,
        tool=send_recovery_email.name,
        status=ApprovalStatus.PENDING,
    ).values_list("pk", flat=True)
    return [{"id": pk, "tool": send_recovery_email.name} for pk in rows]


def current(approvals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's approvals as they stand now (after screening)."""
    status = dict(
        Approval.objects.filter(pk__in=[a["id"] for a in approvals]).values_list("pk", "status")
    )
    return [{**item, "status": status.get(item["id"], item["status"])} for item in approvals]
