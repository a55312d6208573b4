"""Storing an agent's steps (``HandlerContext.record_step``) as Step rows of the attempt.

Each step is written as it completes, in its own autocommit statement, so a run killed midway
keeps the trace of what it did and spent. What is stored is made safe first: strings as
PostgreSQL can hold them, known secret values replaced, large values cut at ``MAX_STEP_BYTES``
with a marker, and for an LLM call only a summary of the request, never the prompt.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from . import rows
from .costs import llm_cost
from .models import Attempt, Delivery, Step, StepKind

log = logging.getLogger("switchyard.pipeline")

MAX_STEP_BYTES = 16 * 1024
MAX_DEPTH = 20
REDACTED = "[redacted]"
TRUNCATED = "[truncated]"
# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
# Shorter values are too likely to occur by chance (and too weak to be real secrets).
MIN_SECRET_LENGTH = 8
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


def secret_values(extra: Iterable[Any] = ()) -> list[str]:
    """Values that must never be stored: secret-looking environment variables, SECRET_KEY and
    ``extra`` (the event source's webhook secrets). Longest first, so a secret that contains
    another is replaced whole."""
    found = {value for name, value in os.environ.items() if SECRET_ENV_NAME.search(name)}
    found.add(str(settings.SECRET_KEY))
    for item in extra:
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            found.update(v for v in item.values() if isinstance(v, str))
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


class Sanitiser:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        # As PostgreSQL can store it: NUL and lone surrogates escaped, not refused.
        value = value.replace("\x00", "\\x00")
        return value.encode("utf-8", "backslashreplace").decode("utf-8")

    def json(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            return TRUNCATED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.json(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.json(item, depth + 1) for item in value]
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if value == value and abs(value) != float("inf") else str(value)
        return self.text(str(value))

    def bounded_json(self, value: Any) -> Any:
        clean = self.json(value)
        encoded = json.dumps(clean)
        if len(encoded.encode()) <= MAX_STEP_BYTES:
            return clean
        return {
            TRUNCATED: True,
            "bytes": len(encoded.encode()),
            "preview": _cut(encoded, MAX_STEP_BYTES),
        }

    def bounded_text(self, value: Any) -> str:
        text = self.text(str(value or ""))
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
        "error": clean.bounded_text(step.get("error")),
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
            input=clean.bounded_json(summary),
            output=None,
            cost_usd=0 if offline else llm_cost(model, **tokens),
            **tokens,
        )
    else:
        row.update(
            name=clean.text(str(step.get("name") or ""))[:200],
            tool_kind=clean.text(str(step.get("tool_kind") or ""))[:16],
            input=clean.bounded_json(step.get("input")),
            output=clean.bounded_json(step["output"]) if "output" in step else None,
        )
    return row


def sanitiser_for(delivery: Delivery) -> Sanitiser:
    """Redacts the secrets that matter for this delivery (see ``secret_values``)."""
    return Sanitiser(secret_values(delivery.event.source.secrets or ()))


def recorder(
    delivery: Delivery,
    number: int,
    clean: Sanitiser | None = None,
    *,
    attempt_id: int | None = None,
) -> Callable[[dict[str, Any]], None]:
    """A ``record_step`` for attempt ``number`` of ``delivery``: each call writes one Step
    (one INSERT when the caller knows the Attempt row's id)."""
    clean = clean or sanitiser_for(delivery)
    count = 0

    def record_step(step: dict[str, Any]) -> None:
        nonlocal attempt_id, count
        count += 1
        try:
            if attempt_id is None:
                attempt_id = Attempt.objects.values_list("id", flat=True).get(
                    delivery=delivery, number=number
                )
            rows.insert(Step(attempt_id=attempt_id, number=count, **step_row(step, clean)))
        except DatabaseError:
            # The trace is a record, not the work: the run goes on without this step.
            log.exception(
                "delivery %s attempt %s: step %s could not be stored", delivery.id, number, count
            )

    return record_step
