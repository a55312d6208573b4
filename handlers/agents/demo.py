"""Two small handlers for the demo: one that succeeds, one that fails on a marked payload.

Send ``reservation.cancelled`` events. A payload with ``"simulate": "permanent_failure"`` makes
``demo.notify_guest`` fail for good (dead-lettered at once); ``"simulate": "transient_failure"``
makes it fail every attempt until its retries run out.
"""

from __future__ import annotations

from typing import Any

from handlers.context import HandlerContext
from handlers.registry import PermanentError, TransientError, handler


@handler("demo.rebook", on=["reservation.cancelled"], max_attempts=3, time_limit=30)
def rebook(ctx: HandlerContext) -> dict[str, Any]:
    """Offer the freed table to the first party on the waitlist."""
    payload = ctx.event.payload if isinstance(ctx.event.payload, dict) else {}
    party = payload.get("party_size", 2)
    offered = {"slot": payload.get("slot", "19:00"), "party_size": party}
    ctx.logger.info("offering slot %s to the waitlist", offered["slot"])
    return {"offered": offered, "idempotency_key": ctx.idempotency_key}


@handler(
    "demo.notify_guest",
    on=["reservation.cancelled"],
    max_attempts=4,
    time_limit=30,
    backoff_base=5.0,
    backoff_max=60.0,
)
def notify_guest(ctx: HandlerContext) -> dict[str, Any]:
    """Tell the guest their cancellation went through."""
    payload = ctx.event.payload if isinstance(ctx.event.payload, dict) else {}
    simulate = payload.get("simulate")
    if simulate == "permanent_failure":
        raise PermanentError("guest has no contact details on file")
    if simulate == "transient_failure":
        raise TransientError("notification service answered 503")
    return {"notified": payload.get("guest", "guest"), "channel": "email"}
