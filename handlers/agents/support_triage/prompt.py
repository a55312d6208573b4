"""What the triage agent is told, and how its answer is read (the same for both providers)."""

from __future__ import annotations

from typing import Any

from handlers.llm import AnswerFormatError, json_answer

from .queues import CATEGORIES

PRIORITIES = ("low", "normal", "high", "urgent")
MAX_SUMMARY_CHARS = 500

SYSTEM = """\
You triage incoming customer support tickets for a software company so they reach the right
team quickly. You summarise the ticket, choose its category and its priority. You do not reply
to the customer and you do not promise anything.

Categories: billing (invoices, charges, refunds, plans), bug (something is broken or wrong),
account (sign-in, passwords, users, settings, data access), feature_request (something the
product does not do yet), other.
Priorities: urgent (production down, data loss, security, many users blocked), high (a customer
is blocked or money was taken wrongly), normal (most tickets), low (questions, ideas).
"""

INSTRUCTIONS = """\
Triage the ticket in the event below. You may call recent_tickets_from with the requester's
email to see their earlier tickets (a repeat problem may deserve a higher priority).

Answer with one JSON object and nothing else:
{"summary": "one or two sentences for the agent who picks it up",
 "category": "billing" | "bug" | "account" | "feature_request" | "other",
 "priority": "low" | "normal" | "high" | "urgent"}
"""


def parse_answer(text: str) -> dict[str, Any]:
    """The triage from the final text (a model's, or the offline plan's). Other fields the
    model adds (a queue, say) are dropped: the queue comes from the category."""
    answer = json_answer(
        text,
        required={"summary": str, "category": str, "priority": str},
        choices={"category": CATEGORIES, "priority": PRIORITIES},
    )
    summary = answer["summary"].strip()
    if not summary:
        raise AnswerFormatError("the answer's 'summary' is empty")
    return {
        "summary": summary[:MAX_SUMMARY_CHARS],
        "category": answer["category"],
        "priority": answer["priority"],
    }
