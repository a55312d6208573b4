"""Handlers that fan out: one emits its own event type again (a loop), one emits as many
follow-ups as its event asks for. For the fan-out limits (events/fanout.py)."""

from __future__ import annotations

from typing import Any

from handlers.context import HandlerContext
from handlers.registry import handler

from .models import HandlerCall

# The integration test moves the loop's route to a queue of its own.
LOOP_TYPE = "test.fanout.loop"
BURST_TYPE = "test.fanout.burst"


@handler("test.looper", on=[LOOP_TYPE], max_attempts=1)
def looper(ctx: HandlerContext) -> dict[str, Any]:
    """Emits the event it handles again, one step further: it would run forever."""
    HandlerCall.objects.create(handler=ctx.handler, event_id=ctx.event.id, attempt=ctx.attempt)
    step = int(ctx.event.payload.get("step", 0)) + 1
    ctx.emit(LOOP_TYPE, {"step": step})
    return {"step": step}


@handler("test.burster", on=[BURST_TYPE], max_attempts=3)
def burster(ctx: HandlerContext) -> dict[str, Any]:
    """Emits ``count`` follow-ups (of a type nothing routes)."""
    count = int(ctx.event.payload.get("count", 0))
    for n in range(count):
        ctx.emit("test.fanout.item", {"n": n})
    return {"emitted": count}
