"""Deferring a delivery that a limit says may not start yet: back to waiting, not failed.

Asked before the claim (events.delivery.execute), so nothing has to be undone: a deferred
delivery keeps its status (pending or retrying), gets ``next_attempt_at`` = its start and a
fresh message with that countdown (events.dispatch, like a retry), and spends no attempt (no
Attempt row, ``attempts`` and ``total_attempts`` unchanged), so a deferral never dead-letters.
The claim stays the exactly-once guard. The sweeper sees a deferred delivery as due at its
start, so it is re-sent only if that message is lost.

The limits asked are ``CHECKS``: each takes the waiting delivery and answers None (go) or a
Hold. Circuit breakers (events.breakers) come first, so a delivery held by an open breaker
takes no rate-limit token; rate limits (events.limits) next.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F
from django.utils import timezone

from events import conf

from .. import breakers, limits
from ..metrics import DEFERRALS
from ..models import Delivery, DeliveryStatus
from .claiming import Outcome
from .policy import CLAIM_SKEW

log = logging.getLogger("switchyard.pipeline")

# A start a limit reserved is honoured this long after its time; a message later than that
# (a busy worker, or the sweeper re-sending a lost one) asks the limits again, so a late
# start never adds to the starts the limit allowed around it.
RESERVATION_SLACK = timedelta(seconds=1)


@dataclass(frozen=True)
class Waiting:
    """What the limits need of a delivery waiting to run, read without a lock."""

    id: int
    status: str
    total_attempts: int
    route_id: int | None
    handler: str
    next_attempt_at: datetime
    deferred_until: datetime | None


@dataclass(frozen=True)
class Hold:
    wait: float  # seconds from now
    reason: str  # "rate limit anthropic: 10/s"
    reserved: bool  # the limit reserved the start at now + wait


def rate_check(waiting: Waiting, now: datetime) -> Hold | None:
    """The delivery's rate limits (its route's, its resources'): one token from each."""
    buckets = limits.limits_for(waiting.route_id, waiting.handler).buckets
    verdict = limits.take(buckets) if buckets else None
    if verdict is None or (verdict.reserved and verdict.wait <= 0):
        return None
    if verdict.reserved:
        return Hold(verdict.wait, verdict.reason, reserved=True)
    # Refused past the horizon: ask again once there is room, spread over the horizon so a
    # long backlog does not come back at once.
    spread = random.random() * max(1.0, float(conf.RATE_LIMIT_HORIZON.get()))
    return Hold(verdict.wait + spread, verdict.reason, reserved=False)


def breaker_check(waiting: Waiting, now: datetime) -> Hold | None:
    """The circuit breakers of the delivery's resources: held while one is open, or
    half-open with its probe running."""
    found = breakers.breakers_for(waiting.route_id, waiting.handler)
    if not found:
        return None
    # A probe whose worker died gives its token back after this long (its time limit, then
    # its lease and a margin): the breaker does not stay half-open for ever.
    probe_ttl = limits.limits_for(waiting.route_id, waiting.handler).time_limit + max(
        int(conf.LEASE_SECONDS.get()), breakers.PROBE_MARGIN
    )
    for breaker in found:
        verdict = breakers.allow(breaker, waiting.id, probe_ttl)
        if verdict.state in ("open", "half"):
            # Spread a little, so a backlog does not come back in one instant.
            return Hold(verdict.wait + random.random() * 0.5, verdict.reason, reserved=False)
    return None


CHECKS: list[Callable[[Waiting, datetime], Hold | None]] = [breaker_check, rate_check]


def gate(delivery_id: int) -> Outcome | None:
    """None: go on to the claim. An Outcome: this message is done (the delivery deferred, or
    its reserved start not come yet), with the countdown for its next message."""
    if not (breakers.any_breakers() or limits.any_limits()):
        return None
    row = (
        Delivery.objects.filter(
            id=delivery_id, status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
        )
        .values_list(
            "status",
            "total_attempts",
            "route_id",
            "handler",
            "next_attempt_at",
            "deferred_until",
        )
        .first()
    )
    if row is None:
        return None  # running, finished or gone: the claim decides
    waiting = Waiting(delivery_id, *row)
    now = timezone.now()
    if waiting.next_attempt_at > now + CLAIM_SKEW:
        return None  # early: the claim sends it again for its due time
    if waiting.deferred_until is not None:
        if now < waiting.deferred_until:
            wait = (waiting.deferred_until - now).total_seconds()
            return _outcome(waiting, "early", wait)
        if now <= waiting.deferred_until + RESERVATION_SLACK:
            return None  # its reserved start
    for check in CHECKS:
        hold = check(waiting, now)
        if hold is not None:
            return defer(waiting, hold, now)
    return None


def defer(waiting: Waiting, hold: Hold, now: datetime) -> Outcome:
    """Move the waiting delivery's start ``hold.wait`` seconds on, as read (a copy that lost
    a race to another changes nothing)."""
    until = now + timedelta(seconds=hold.wait)
    won = Delivery.objects.filter(
        id=waiting.id, status=waiting.status, total_attempts=waiting.total_attempts
    ).update(
        next_attempt_at=until,
        enqueued_at=now,
        deferred_until=until if hold.reserved else None,
        deferrals=F("deferrals") + 1,
        deferred_reason=hold.reason[:200],
        # A worker got its message: the queue is consumed, the sweeper starts over.
        resends=0,
        resend_after=None,
    )
    if not won:
        return Outcome(waiting.id, "noop")
    DEFERRALS.labels(waiting.handler).inc()
    log.info("delivery %s deferred %.2f s (%s)", waiting.id, hold.wait, hold.reason)
    return _outcome(waiting, "deferred", hold.wait)


def _outcome(waiting: Waiting, status: str, wait: float) -> Outcome:
    found = limits.limits_for(waiting.route_id, waiting.handler)
    return Outcome(
        waiting.id, status, retry_in=wait, queue=found.queue, time_limit=found.time_limit
    )
