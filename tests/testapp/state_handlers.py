"""Handlers that keep state across events (``ctx.state``), for tests/pipeline/test_state.py and
the two-worker test in tests/integration/test_state_workers.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from handlers.context import HandlerContext
from handlers.registry import TransientError, handler

from .models import HandlerCall

# Called (first in, first out) between a run's read of its state and its return: a test puts
# another writer here (a concurrent delivery, an operator's edit).
BETWEEN_READ_AND_WRITE: list[Callable[[], None]] = []


@handler(
    "test.state.count",
    on=["test.state.count"],
    max_attempts=10,
    backoff_base=0.2,
    backoff_max=1.0,
)
def count(ctx: HandlerContext) -> dict[str, Any]:
    """Adds one to ``count`` in its state; every run is logged (re-runs included)."""
    HandlerCall.objects.create(handler=ctx.handler, event_id=ctx.event.id, attempt=ctx.attempt)
    seen = ctx.state.get("count", 0)
    # Widens the window between the read and the write, so concurrent runs overlap.
    time.sleep(float(ctx.event.payload.get("pause", 0)))
    if BETWEEN_READ_AND_WRITE:
        BETWEEN_READ_AND_WRITE.pop(0)()
    ctx.state["count"] = seen + 1
    ctx.emit("test.state.counted", {"count": seen + 1})
    return {"count": seen + 1}


@handler("test.state.put", on=["test.state.put"], max_attempts=2, backoff_base=0.2)
def put(ctx: HandlerContext) -> dict[str, Any]:
    """Sets ``value`` in its state to the payload's (a set, not JSON, when asked), or fails
    after changing it."""
    value = ctx.event.payload.get("value")
    ctx.state["value"] = set(value) if ctx.event.payload.get("as_set") else value
    if ctx.event.payload.get("fail"):
        raise TransientError("failed after changing its state")
    return {"put": True}


@handler("test.state.read", on=["test.state.read"], max_attempts=1)
def read_only(ctx: HandlerContext) -> dict[str, Any]:
    """Reads its state and changes nothing."""
    return {"state": dict(ctx.state)}
