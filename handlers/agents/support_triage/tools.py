"""The triage agent's read tool: a requester's earlier tickets, from the stored events.

It looks only at ``ticket.created`` events from the same source as the ticket being triaged
(the run's ``current_event()``), never at the ticket itself, and returns subjects and
earlier triage results, not ticket bodies.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from events.models import Event
from handlers.llm import current_event, tool

from .rules import requester_email

TICKET_CREATED = "ticket.created"
TICKET_ROUTED = "ticket.routed"
MAX_TICKETS = 5
MAX_DAYS = 365


@tool(kind="read")
def recent_tickets_from(email: str, days: int = 90) -> dict[str, Any]:
    """The requester's earlier tickets (newest first, at most 5) and how they were triaged.

    Args:
        email: The requester's email address, as in the ticket.
        days: How far back to look, 1 to 365.
    """
    current = current_event()
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}")
    email = email.strip()
    if not email:
        raise ValueError("email is empty")
    # The ticket's text is untrusted: it must not be able to point the model at someone else's
    # history (which could then travel on in the summary).
    if email.lower() != requester_email(current.payload).lower():
        raise ValueError("only the tickets of this ticket's requester can be looked up")
    earlier = list(
        Event.objects.filter(
            type=TICKET_CREATED,
            source__slug=current.source,
            received_at__gte=timezone.now() - timedelta(days=days),
            payload__ticket__requester__email__iexact=email,
        )
        .exclude(id=current.id)
        .order_by("-received_at")
        .values("id", "payload", "received_at")[:MAX_TICKETS]
    )
    routed = {
        row["emitted_by__event_id"]: row["payload"]
        for row in Event.objects.filter(
            type=TICKET_ROUTED, emitted_by__event_id__in=[e["id"] for e in earlier]
        ).values("emitted_by__event_id", "payload")
    }
    tickets = []
    for event in earlier:
        ticket = event["payload"].get("ticket") or {}
        triage = routed.get(event["id"]) or {}
        tickets.append(
            {
                "ticket_id": str(ticket.get("id", "")),
                "subject": str(ticket.get("subject", ""))[:200],
                "received_at": event["received_at"].isoformat(),
                "triage": {k: triage.get(k) for k in ("category", "priority", "queue")}
                if triage
                else None,
            }
        )
    return {"email": email, "days": days, "count": len(tickets), "tickets": tickets}
