"""What happened in the pipeline over the last hours, as a small JSON-safe dict.

Counts per event type and status, deliveries per status, the newest dead letters with their
handler and a short error, pending approvals, and what agents spent (the same LLM-step sums the
budgets use, handlers.budgets). Every list is capped and every text cut short, so the summary
stays small however busy the day was: it goes into a prompt and an outcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Min
from django.utils import timezone

from events.models import Delivery, DeliveryStatus, Event
from handlers.budgets import COST, TOKENS, llm_steps_since
from handlers.models import Approval, ApprovalStatus

MAX_HOURS = 7 * 24
MAX_TYPES = 20
MAX_DEAD_LETTERS = 10
MAX_HANDLERS = 20
ERROR_CHARS = 160


def pipeline_summary(hours: int, now: datetime | None = None) -> dict[str, Any]:
    """The summary of the ``hours`` before ``now``; newest first where order matters."""
    until, since = bounds(hours, now)
    return {
        "window": window(hours, until),
        "events": event_counts(since, until),
        "deliveries": {"by_status": delivery_counts(since, until)},
        "dead_letters": dead_letters(since, until),
        "approvals": pending_approvals(),
        "agents": agent_usage(since, until),
    }


def bounds(hours: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """(until, since) of the ``hours`` before ``now``."""
    if isinstance(hours, bool) or not 1 <= hours <= MAX_HOURS:
        raise ValueError(f"hours must be from 1 to {MAX_HOURS}, not {hours}")
    until = now or timezone.now()
    return until, until - timedelta(hours=hours)


def window(hours: int, now: datetime | None = None) -> dict[str, Any]:
    until, since = bounds(hours, now)
    return {"hours": hours, "since": since.isoformat(), "until": until.isoformat()}


def event_counts(since: datetime, until: datetime) -> dict[str, Any]:
    rows = (
        Event.objects.filter(received_at__gte=since, received_at__lt=until)
        .order_by()
        .values("type", "status")
        .annotate(n=Count("id"))
    )
    by_type: dict[str, dict[str, int]] = {}
    by_status: dict[str, int] = {}
    for row in rows:
        by_type.setdefault(row["type"], {})[row["status"]] = row["n"]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
    ranked = sorted(by_type.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    return {
        "total": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "by_type": [
            {
                "type": type,
                "total": sum(statuses.values()),
                "statuses": dict(sorted(statuses.items())),
            }
            for type, statuses in ranked[:MAX_TYPES]
        ],
        "more_types": max(0, len(ranked) - MAX_TYPES),
    }


def delivery_counts(since: datetime, until: datetime) -> dict[str, int]:
    rows = (
        Delivery.objects.filter(created_at__gte=since, created_at__lt=until)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
    )
    return {row["status"]: row["n"] for row in sorted(rows, key=lambda row: row["status"])}


def dead_letters(since: datetime, until: datetime) -> dict[str, Any]:
    # status + finished_at: the partial index delivery_dead.
    dead = Delivery.objects.filter(
        status=DeliveryStatus.DEAD_LETTERED, finished_at__gte=since, finished_at__lt=until
    )
    per_handler = dead.order_by().values("handler").annotate(n=Count("id"))
    newest = dead.order_by("-finished_at", "-id").values(
        "id", "handler", "event__type", "error_class", "last_error", "finished_at"
    )[:MAX_DEAD_LETTERS]
    handlers = sorted(per_handler, key=lambda row: (-row["n"], row["handler"]))
    return {
        "total": sum(row["n"] for row in handlers),
        "by_handler": [{"handler": r["handler"], "count": r["n"]} for r in handlers[:MAX_HANDLERS]],
        "newest": [
            {
                "delivery": row["id"],
                "handler": row["handler"],
                "event_type": row["event__type"],
                "error_class": row["error_class"].rpartition(".")[2],
                "error": short(row["last_error"]),
                "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
            }
            for row in newest
        ],
    }


def pending_approvals() -> dict[str, Any]:
    # status=pending: the partial index approval_pending.
    totals = Approval.objects.filter(status=ApprovalStatus.PENDING).aggregate(
        n=Count("id"), oldest=Min("created_at")
    )
    oldest = totals["oldest"]
    return {"pending": totals["n"], "oldest_pending_at": oldest.isoformat() if oldest else None}


def agent_usage(since: datetime, until: datetime) -> dict[str, Any]:
    rows = (
        llm_steps_since(since)
        .filter(created_at__lt=until)
        .values(handler=F("attempt__delivery__handler"))
        .annotate(llm_calls=Count("id"), tokens=TOKENS, cost=COST)
    )
    handlers = sorted(rows, key=lambda row: (-(row["cost"] or 0), -(row["tokens"] or 0)))
    return {
        "llm_calls": sum(row["llm_calls"] for row in handlers),
        "tokens": sum(row["tokens"] or 0 for row in handlers),
        "cost_usd": usd(sum((row["cost"] or Decimal(0) for row in handlers), Decimal(0))),
        "by_handler": [
            {
                "handler": row["handler"],
                "llm_calls": row["llm_calls"],
                "tokens": row["tokens"] or 0,
                "cost_usd": usd(row["cost"] or Decimal(0)),
            }
            for row in handlers[:MAX_HANDLERS]
        ],
    }


def usd(amount: Decimal) -> str:
    """A cost as a string with the Step column's six decimals (JSON has no decimals)."""
    return f"{amount:.6f}"


def short(text: str) -> str:
    """The first line of an error, cut to ERROR_CHARS."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= ERROR_CHARS else f"{line[: ERROR_CHARS - 1]}…"
