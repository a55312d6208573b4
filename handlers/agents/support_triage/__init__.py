"""Support triage: each new ticket gets a summary, a category and a priority, and is routed.

On ``ticket.created`` the agent answers with the triage; the handler looks the team queue up
from the category (queues.py, never from the model) and emits ``ticket.routed`` with the
ticket id, queue, category, priority and summary, for whatever files it in the helpdesk. It
remembers each requester's tickets of the last day (memory.py, ``ctx.state``): the third
within 24 hours is escalated to urgent. See docs/agents.md ("Support triage").
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from handlers.context import HandlerContext
from handlers.errors import PermanentError
from handlers.llm import Agent, OfflinePlan
from handlers.registry import handler

from . import conf, memory, prompt, rules, tools

NAME = "support.triage"


def offline_plan(ctx: HandlerContext) -> OfflinePlan:
    """The keyword triage as the JSON answer the model would give, after looking up the
    requester's earlier tickets as the model is invited to."""
    email = rules.requester_email(ctx.event.payload)
    calls = [("recent_tickets_from", {"email": email})] if email else []
    return OfflinePlan(text=json.dumps(rules.triage(ctx.event.payload)), calls=calls)


triager = Agent(
    name=NAME,
    system=prompt.SYSTEM,
    tools=[tools.recent_tickets_from],
    max_turns=4,
    max_tokens=800,
    offline=offline_plan,
)


def ticket_id(ctx: HandlerContext) -> str:
    """The helpdesk's ticket id, or the event's external id when the payload has none."""
    value = rules.ticket(ctx.event.payload).get("id")
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()[:100]
    return ctx.event.external_id


@handler(NAME, on=["ticket.created"], max_attempts=4, time_limit=180, resources=["anthropic"])
def triage_ticket(ctx: HandlerContext) -> dict[str, Any]:
    """Summarise, categorise and prioritise a new ticket, and route it to its team's queue."""
    try:
        queue_map = conf.queue_map()  # before spending tokens
    except (ValueError, ImproperlyConfigured) as exc:
        raise PermanentError(str(exc)) from None
    result = triager.run(ctx, prompt.INSTRUCTIONS)
    triage = prompt.parse_answer(result.text)
    ticket = ticket_id(ctx)
    tickets_in_24h = memory.remember(ctx, ticket)
    escalated = tickets_in_24h is not None and tickets_in_24h >= memory.ESCALATE_AT
    routed = {
        "ticket_id": ticket,
        "queue": queue_map[triage["category"]],
        **triage,
        "priority": "urgent" if escalated else triage["priority"],
        "escalated": escalated,
    }
    ctx.emit("ticket.routed", routed)
    return {
        **result.as_outcome(),
        **triage,
        "tickets_in_24h": tickets_in_24h,
        "routed": routed,
    }
