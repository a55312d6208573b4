"""A handler for the flow-control tests (tests/flow): it records when it ran, and can fail once."""

from __future__ import annotations

import time
from typing import Any

from handlers.context import HandlerContext
from handlers.errors import TransientError
from handlers.registry import handler

from .models import HandlerCall


@handler(
    "test.flow",
    on=["test.flow"],
    max_attempts=3,
    backoff_base=0.2,
    backoff_max=1.0,
    queue="flow",
)
def flow(ctx: HandlerContext) -> dict[str, Any]:
    """Holds its slot ``sleep`` seconds, and ``sleep_first`` more on its first attempt; with
    ``fail_once`` its first attempt fails for a retry. Its outcome says when it started and
    ended (time.time(), the worker's clock)."""
    started = time.time()
    HandlerCall.objects.create(handler=ctx.handler, event_id=ctx.event.id, attempt=ctx.attempt)
    time.sleep(float(ctx.event.payload.get("sleep", 0)))
    if ctx.attempt == 1:
        time.sleep(float(ctx.event.payload.get("sleep_first", 0)))
    if ctx.event.payload.get("fail_once") and ctx.attempt == 1:
        raise TransientError("failing once, as asked", retry_after=0.2)
    return {"started": started, "ended": time.time(), "seq": ctx.event.payload.get("seq")}
