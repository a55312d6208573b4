"""The briefing itself: checked from the model's answer, or written from the numbers alone
(the offline provider), and rendered as a plain-text email."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers.llm import AnswerFormatError, json_answer

from . import prompt

MAX_ITEMS = 8
HEADLINE_CHARS = 200
ITEM_CHARS = 300
SUBJECT_CHARS = 150
OFFLINE_ITEMS = 5


def from_answer(text: str, redact: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The briefing in the model's final text: a headline and two lists of strings, cut to
    size. A missing field or a non-string item raises AnswerFormatError."""
    answer = json_answer(text, required=prompt.REQUIRED)
    for field in ("highlights", "attention"):
        if not all(isinstance(item, str) for item in answer[field]):
            raise AnswerFormatError(f"the answer's {field!r} must be a list of strings")
    clean = redact or (lambda value: value)
    return {
        "headline": clean(_cut(" ".join(answer["headline"].split()), HEADLINE_CHARS)),
        "highlights": [clean(_cut(item.strip(), ITEM_CHARS)) for item in answer["highlights"]][
            :MAX_ITEMS
        ],
        "attention": [clean(_cut(item.strip(), ITEM_CHARS)) for item in answer["attention"]][
            :MAX_ITEMS
        ],
    }


def from_numbers(summary: dict[str, Any]) -> dict[str, Any]:
    """A plain briefing written from a pipeline summary, the same for the same numbers."""
    hours = summary["window"]["hours"]
    events = summary["events"]
    statuses = events["by_status"]
    dead = summary["dead_letters"]
    agents = summary["agents"]
    approvals = summary["approvals"]

    if events["total"] == 0:
        headline = f"No events in the last {hours} hours."
    else:
        headline = (
            f"{plural(events['total'], 'event')} in the last {hours} hours: "
            f"{statuses.get('processed', 0)} processed, "
            f"{statuses.get('dead_lettered', 0)} dead-lettered"
            + (f", {statuses['failed']} still retrying" if statuses.get("failed") else "")
            + "."
        )

    highlights = []
    if events["by_type"]:
        busiest = ", ".join(f"{row['type']} ({row['total']})" for row in events["by_type"][:3])
        highlights.append(f"Busiest event types: {busiest}.")
    deliveries = summary["deliveries"]["by_status"]
    if deliveries:
        counts = ", ".join(f"{n} {status}" for status, n in deliveries.items())
        highlights.append(f"Deliveries: {counts}.")
    if statuses.get("ignored"):
        highlights.append(f"{plural(statuses['ignored'], 'event')} matched no route.")
    if agents["llm_calls"]:
        top = agents["by_handler"][0]
        highlights.append(
            f"Agents made {agents['llm_calls']} model calls using {agents['tokens']} tokens "
            f"(${agents['cost_usd']}); the most by {top['handler']} (${top['cost_usd']})."
        )
    else:
        highlights.append("No agent made a model call.")

    attention = []
    newest = {}
    for row in reversed(dead["newest"]):
        newest[row["handler"]] = row  # the newest one per handler wins
    for row in dead["by_handler"][:3]:
        line = f"{plural(row['count'], 'dead letter')} for {row['handler']}"
        if row["handler"] in newest:
            last = newest[row["handler"]]
            line += f"; newest: {last['error_class'] or 'error'}: {last['error']}"
        attention.append(f"{line}.")
    if len(dead["by_handler"]) > 3:
        attention.append(f"{len(dead['by_handler']) - 3} more handlers have dead letters.")
    if approvals["pending"]:
        attention.append(
            f"{plural(approvals['pending'], 'approval')} waiting, the oldest since "
            f"{approvals['oldest_pending_at']}."
        )
    if statuses.get("failed"):
        attention.append(f"{plural(statuses['failed'], 'event')} still retrying.")
    return {
        "headline": headline,
        "highlights": highlights[:OFFLINE_ITEMS],
        "attention": attention[:OFFLINE_ITEMS],
    }


def email_subject(briefing: dict[str, Any]) -> str:
    return _cut(f"Switchyard briefing: {briefing['headline']}", SUBJECT_CHARS)


def email_body(briefing: dict[str, Any], window: dict[str, Any], provider: str) -> str:
    lines = [briefing["headline"], "", "Highlights:"]
    lines += [f"- {item}" for item in briefing["highlights"]] or ["- (none)"]
    lines += ["", "Needs attention:"]
    lines += [f"- {item}" for item in briefing["attention"]] or ["- Nothing."]
    lines += [
        "",
        f"Window: {window['since']} to {window['until']} ({window['hours']} hours).",
        f"Written by the briefing.daily agent (provider: {provider}).",
    ]
    return "\n".join(lines) + "\n"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
