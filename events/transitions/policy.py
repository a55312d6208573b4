"""A delivery's retry policy: its route's settings (or its handler's declared ones) and the
backoff between attempts."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from events import conf
from handlers import registry

from ..fanout import Cap, max_depth, max_emits
from ..models import Delivery, Route

log = logging.getLogger("switchyard.pipeline")


CLAIM_SKEW = timedelta(seconds=2)


@dataclass(frozen=True)
class RouteSettings:
    """The retry and timing settings in force for a delivery: its route's, or the handler's
    declared defaults when the route was deleted."""

    max_attempts: int
    time_limit: int
    backoff_base: float
    backoff_max: float
    backoff_jitter: float
    queue: str
    stale_after: int | None
    # Follow-up events one delivery may emit, and how deep they may be (events.fanout).
    max_emits: int
    max_depth: Cap


def route_settings(delivery: Delivery) -> RouteSettings:
    route: Route | None = delivery.route
    if route is not None:
        return RouteSettings(
            max_attempts=route.max_attempts,
            time_limit=min(route.time_limit, conf.MAX_TIME_LIMIT.get()),
            backoff_base=route.backoff_base,
            backoff_max=min(route.backoff_max, conf.MAX_BACKOFF.get()),
            backoff_jitter=route.backoff_jitter,
            queue=route.queue,
            stale_after=route.stale_after,
            max_emits=max_emits(route),
            max_depth=max_depth(route),
        )
    spec = registry.get(delivery.handler)
    return RouteSettings(
        max_attempts=spec.max_attempts if spec else 1,
        time_limit=min(spec.time_limit if spec else 60, conf.MAX_TIME_LIMIT.get()),
        backoff_base=spec.backoff_base if spec else 2.0,
        backoff_max=min(spec.backoff_max if spec else 600.0, conf.MAX_BACKOFF.get()),
        backoff_jitter=0.25,
        queue=spec.queue if spec else "default",
        stale_after=spec.stale_after if spec else None,
        max_emits=max_emits(None),
        max_depth=max_depth(None),
    )


def backoff_delay(
    attempt: int, base: float, cap: float, jitter: float, rand: float | None = None
) -> float:
    """Exponential backoff with a cap: base * 2**(attempt-1), stretched by up to ``jitter``.

    The jitter only lengthens a delay (never below the exponential step), so delays grow
    attempt after attempt while retries from many deliveries still spread out.
    """
    r = random.random() if rand is None else rand
    return min(cap, base * (2 ** min(attempt - 1, 62)) * (1 + jitter * r))
