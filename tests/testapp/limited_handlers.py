"""A handler for the rate-limit tests (tests/limits): it says when it started."""

from __future__ import annotations

import time
from typing import Any

from handlers.context import HandlerContext
from handlers.registry import handler

from .models import HandlerCall


@handler(
    "test.limited", on=["test.limited"], max_attempts=1, queue="limits", resources=["test-api"]
)
def limited(ctx: HandlerContext) -> dict[str, Any]:
    """Records its start (time.time(), on the worker's clock), then holds its slot a while so
    starts on two workers overlap."""
    started = time.time()
    HandlerCall.objects.create(handler=ctx.handler, event_id=ctx.event.id, attempt=ctx.attempt)
    time.sleep(float(ctx.event.payload.get("sleep", 0)))
    return {"started": started}
