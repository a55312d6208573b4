"""Handlers the pipeline itself registers (through the handler registry, like any other).

``stream.rejected``: the dead-letter handler for Redis Stream entries that could not become an
event.

``manage.py consume_stream`` (events.streams) stores such an entry as a ``stream.rejected``
event (the raw fields and the reason in its payload) with one delivery to this handler, already
dead-lettered, so it shows up with the other dead letters. The handler subscribes to nothing:
that delivery is the only way it runs. A requeue from the admin runs it, and it fails again with
the same reason, because the entry itself is what is wrong; the fix is to add a corrected entry
to the stream.
"""

from __future__ import annotations

from typing import Any

from handlers.context import HandlerContext
from handlers.errors import PermanentError
from handlers.registry import handler

REJECTED_TYPE = "stream.rejected"
REJECTED_HANDLER = "stream.rejected"


@handler(REJECTED_HANDLER, max_attempts=1, time_limit=10)
def rejected(ctx: HandlerContext) -> dict[str, Any]:
    """A stream entry that could not be published; it cannot succeed, so it stays dead."""
    payload = ctx.event.payload if isinstance(ctx.event.payload, dict) else {}
    reason = payload.get("reason") or "the stream entry could not be published"
    raise PermanentError(f"{reason} (add a corrected entry to the stream instead)")
