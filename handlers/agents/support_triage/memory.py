"""Support triage's memory across tickets (``ctx.state``): the requester's tickets of the last
day, so that their third ticket within 24 hours is escalated.

State is kept per partition key: the helpdesk sends the requester's email as the event's
``partition_key`` (docs/agents.md, "Support triage"). An event without one gets no memory: a
single document for every requester would mix them up and grow towards the size limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from handlers.context import HandlerContext

WINDOW = timedelta(hours=24)
ESCALATE_AT = 3  # the third ticket within WINDOW, and any after it
MAX_REMEMBERED = 20  # newest kept; far below SWITCHYARD_STATE_MAX_BYTES


def _at(entry: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(entry.get("at")))
    except (AttributeError, TypeError, ValueError):
        return None


def remember(ctx: HandlerContext, ticket_id: str) -> int | None:
    """Add this ticket to the requester's memory; how many of their tickets arrived within the
    24 hours up to this one, this one included. None when the event has no partition key."""
    if not ctx.event.partition_key:
        return None
    now = datetime.fromisoformat(ctx.event.received_at)
    kept: list[tuple[datetime, dict[str, Any]]] = []
    for entry in ctx.state.get("tickets", []):
        at = _at(entry)
        # A ticket seen again (a replay, a re-sent webhook) is counted once.
        if at is not None and at > now - WINDOW and entry.get("id") != ticket_id:
            kept.append((at, {"id": str(entry.get("id")), "at": at.isoformat()}))
    kept.append((now, {"id": ticket_id, "at": now.isoformat()}))
    kept.sort(key=lambda pair: pair[0])
    ctx.state["tickets"] = [entry for _, entry in kept[-MAX_REMEMBERED:]]
    # Tickets that arrived after this one (run earlier, this one was retried) are kept but
    # not counted for it.
    return sum(1 for at, _ in kept if at <= now)
