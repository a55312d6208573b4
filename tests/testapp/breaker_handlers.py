"""A handler for the circuit-breaker tests (tests/limits/test_breakers*.py): it calls the
"flaky" resource, a local HTTP server named in its event, and fails as a client of a model
provider would on a 529: with a TransientError."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from handlers.context import HandlerContext
from handlers.errors import PermanentError, TransientError
from handlers.registry import handler

from .models import HandlerCall


@handler(
    "test.breaker",
    on=["test.breaker"],
    max_attempts=8,
    backoff_base=0.2,
    backoff_max=0.5,
    queue="breakers",
    resources=["flaky"],
)
def breaker(ctx: HandlerContext) -> dict[str, Any]:
    HandlerCall.objects.create(handler=ctx.handler, event_id=ctx.event.id, attempt=ctx.attempt)
    payload = ctx.event.payload
    if payload.get("permanent"):
        raise PermanentError("flaky: bad input")
    if payload.get("fail"):
        raise TransientError("flaky: overloaded")
    url = str(payload.get("url", ""))
    if not url.startswith("http://127.0.0.1:"):
        return {"called": False}
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (checked above)
            return {"status": answer.status}
    except urllib.error.HTTPError as exc:
        raise TransientError(f"flaky answered {exc.code}") from None
