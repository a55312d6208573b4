"""An agent's trace in the admin: the steps of a delivery's attempts, and token and cost totals.

Steps hang off attempts, and Django has no nested inlines, so the delivery page shows them as
one read-only table; the deliveries list adds totals for the rows on the page only. Both are
added to the pipeline's delivery admin through events.extensions (handlers.admin).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, Sum
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from events.admin.common import truncate
from events.extensions import DeliveryColumns, DeliveryPanel
from events.models import Delivery

from ..models import Step, StepKind

TRACE_FIELDSET = "Agent trace"
TOTALS_ATTR = "_step_totals"
TOTALS = {
    "llm_calls": Count("id", filter=Q(kind=StepKind.LLM)),
    "tool_calls": Count("id", filter=Q(kind=StepKind.TOOL)),
    "input_tokens": Sum("input_tokens"),
    "output_tokens": Sum("output_tokens"),
    "cache_creation_tokens": Sum("cache_creation_tokens"),
    "cache_read_tokens": Sum("cache_read_tokens"),
    "cost_usd": Sum("cost_usd"),
}


def has_steps(delivery: Delivery) -> bool:
    return Step.objects.filter(attempt__delivery=delivery).exists()


def delivery_totals(delivery_id: int) -> dict[str, Any]:
    totals = Step.objects.filter(attempt__delivery_id=delivery_id).aggregate(**TOTALS)
    return {key: value or 0 for key, value in totals.items()}


def usd(value: Decimal | int) -> str:
    return f"${Decimal(value):.6f}"


def tokens_cell(totals: dict[str, Any]) -> str:
    return f"{totals['input_tokens']:,} in / {totals['output_tokens']:,} out"


def totals_summary(delivery: Delivery) -> str:
    totals = delivery_totals(delivery.pk)
    if not totals["llm_calls"] and not totals["tool_calls"]:
        return "-"
    return (
        f"{totals['llm_calls']} LLM calls, {totals['tool_calls']} tool calls; "
        f"tokens {tokens_cell(totals)}, cache {totals['cache_creation_tokens']:,} written / "
        f"{totals['cache_read_tokens']:,} read; cost {usd(totals['cost_usd'])}"
    )


def _value(value: Any) -> str | SafeString:
    if value is None or value == {}:
        return "-"
    if isinstance(value, str):
        line = full = value
    else:
        line = json.dumps(value, sort_keys=True, ensure_ascii=False)
        full = json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2)
    if len(line) <= 80 and "\n" not in line:
        return line
    return format_html(
        "<details><summary>{}</summary><pre>{}</pre></details>", truncate(line, 80), full
    )


def steps_table(delivery: Delivery) -> str | SafeString:
    steps = list(
        Step.objects.filter(attempt__delivery=delivery)
        .select_related("attempt")
        .order_by("attempt__number", "number")
    )
    if not steps:
        return "-"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                step.attempt.number,
                step.number,
                step.kind if not step.tool_kind else f"{step.kind} ({step.tool_kind})",
                step.name,
                _value(step.input),
                _value(step.error) if step.error else _value(step.output),
                f"{step.input_tokens:,} / {step.output_tokens:,}" if step.kind == "llm" else "",
                f"{step.cache_creation_tokens:,} / {step.cache_read_tokens:,}"
                if step.kind == "llm"
                else "",
                usd(step.cost_usd) if step.kind == "llm" else "",
                "-" if step.latency_ms is None else f"{step.latency_ms} ms",
                step.stop_reason or "",
            )
            for step in steps
        ),
    )
    return format_html(
        '<table class="step-trace"><thead><tr><th>attempt</th><th>step</th><th>kind</th>'
        "<th>model / tool</th><th>input</th><th>output / error</th><th>tokens in / out</th>"
        "<th>cache write / read</th><th>cost</th><th>latency</th><th>stop reason</th></tr>"
        "</thead><tbody>{}</tbody></table>",
        rows,
    )


def add_totals(deliveries: list[Delivery]) -> None:
    """Each listed delivery's token and cost totals, in one query for the page's rows."""
    ids = [delivery.pk for delivery in deliveries]
    by_delivery: dict[int, dict[str, Any]] = {}
    if ids:
        rows = (
            Step.objects.filter(attempt__delivery_id__in=ids)
            .order_by()  # no GROUP BY on Step's default ordering
            .values("attempt__delivery_id")
            .annotate(**TOTALS)
        )
        by_delivery = {row["attempt__delivery_id"]: dict(row) for row in rows}
    for delivery in deliveries:
        setattr(delivery, TOTALS_ATTR, by_delivery.get(delivery.pk))


def listed_totals(delivery: Delivery) -> dict[str, Any] | None:
    """The totals add_totals attached, or None for a delivery with no steps."""
    totals: dict[str, Any] | None = getattr(delivery, TOTALS_ATTR, None)
    return totals


@admin.display(description="tokens")
def tokens(delivery: Delivery) -> str:
    totals = listed_totals(delivery)
    return "-" if totals is None else tokens_cell(totals)


@admin.display(description="cost")
def cost(delivery: Delivery) -> str:
    totals = listed_totals(delivery)
    return "-" if totals is None else usd(totals["cost_usd"])


@admin.display(description="totals")
def step_totals(delivery: Delivery) -> str:
    return totals_summary(delivery)


@admin.display(description="steps")
def steps(delivery: Delivery) -> str | SafeString:
    return steps_table(delivery)


# The delivery admin's trace fieldset (shown when the delivery has steps) and list columns.
TRACE_PANEL = DeliveryPanel(TRACE_FIELDSET, (step_totals, steps), has_steps)
TOTALS_COLUMNS = DeliveryColumns((tokens, cost), prepare=add_totals)
