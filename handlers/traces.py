"""Storing an agent's steps (``HandlerContext.record_step``) as Step rows of the attempt.

Each step is written as it completes, in its own autocommit statement, so a run killed midway
keeps the trace of what it did and spent. What is stored is made safe first: strings as
PostgreSQL can hold them, known secret values replaced, large values cut at ``MAX_STEP_BYTES``
with a marker, and for an LLM call only a summary of the request, never the prompt.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError

from events import rows
from events.models import Attempt, Delivery
from events.redaction import TRUNCATED, Sanitiser

from . import metrics
from .costs import llm_cost
from .models import Step, StepKind

log = logging.getLogger("switchyard.pipeline")

MAX_STEP_BYTES = 16 * 1024
# Keys of an LLM step that have columns of their own; the rest is the request summary.
LLM_COLUMNS = {
    "kind",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "stop_reason",
    "latency_ms",
    "error",
}


def bounded_json(clean: Sanitiser, value: Any) -> Any:
    clean = clean.json(value)
    encoded = json.dumps(clean)
    if len(encoded.encode()) <= MAX_STEP_BYTES:
        return clean
    return {
        TRUNCATED: True,
        "bytes": len(encoded.encode()),
        "preview": _cut(encoded, MAX_STEP_BYTES),
    }


def bounded_text(clean: Sanitiser, value: Any) -> str:
    text = clean.text(str(value or ""))
    if len(text.encode()) <= MAX_STEP_BYTES:
        return text
    return _cut(text, MAX_STEP_BYTES - 32) + f" ... {TRUNCATED}"


def _cut(text: str, limit: int) -> str:
    return text.encode()[:limit].decode("utf-8", "ignore")


def _count(step: dict[str, Any], key: str) -> int:
    value = step.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def step_row(step: dict[str, Any], clean: Sanitiser) -> dict[str, Any]:
    """The Step columns for one step dict from the agent runtime."""
    kind = StepKind.LLM if step.get("kind") == "llm" else StepKind.TOOL
    latency = step.get("latency_ms")
    row: dict[str, Any] = {
        "kind": kind,
        "error": bounded_text(clean, step.get("error")),
        "latency_ms": latency if isinstance(latency, int) and latency >= 0 else None,
        "stop_reason": clean.text(str(step.get("stop_reason") or ""))[:64],
    }
    if kind == StepKind.LLM:
        model = str(step.get("model") or "")
        tokens = {
            "input_tokens": _count(step, "input_tokens"),
            "output_tokens": _count(step, "output_tokens"),
            "cache_creation_tokens": _count(step, "cache_creation_input_tokens"),
            "cache_read_tokens": _count(step, "cache_read_input_tokens"),
        }
        summary = {k: v for k, v in step.items() if k not in LLM_COLUMNS}
        offline = step.get("provider") == "offline"
        row.update(
            name=clean.text(model)[:200],
            input=bounded_json(clean, summary),
            output=None,
            cost_usd=0 if offline else llm_cost(model, **tokens),
            **tokens,
        )
    else:
        row.update(
            name=clean.text(str(step.get("name") or ""))[:200],
            tool_kind=clean.text(str(step.get("tool_kind") or ""))[:16],
            input=bounded_json(clean, step.get("input")),
            output=bounded_json(clean, step["output"]) if "output" in step else None,
        )
    return row


def recorder(
    delivery: Delivery,
    number: int,
    clean: Sanitiser,
    *,
    attempt_id: int | None = None,
) -> Callable[[dict[str, Any]], None]:
    """A ``record_step`` for attempt ``number`` of ``delivery``: each call writes one Step
    (one INSERT when the caller knows the Attempt row's id)."""
    count = 0

    def record_step(step: dict[str, Any]) -> None:
        nonlocal attempt_id, count
        count += 1
        try:
            if attempt_id is None:
                attempt_id = Attempt.objects.values_list("id", flat=True).get(
                    delivery=delivery, number=number
                )
            row = step_row(step, clean)
            rows.insert(Step(attempt_id=attempt_id, number=count, **row))
        except DatabaseError:
            # The trace is a record, not the work: the run goes on without this step.
            log.exception(
                "delivery %s attempt %s: step %s could not be stored", delivery.id, number, count
            )
            return
        if row["kind"] == StepKind.LLM:
            metrics.count(delivery.handler, row)

    return record_step
