"""Celery tasks. Thin: load by id, call a plain function, act on what it says."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import DatabaseError

from .delivery import execute
from .leases import FENCE_MARGIN
from .recovery import sweep as sweep_deliveries
from .schedules.tasks import run_schedule  # noqa: F401  (registers events.schedule)

log = logging.getLogger("switchyard.pipeline")

# Seconds a prefork child gets after the soft limit to wrap up before it is killed; the
# threads pool fences an attempt after the same margin (events.leases).
HARD_LIMIT_MARGIN = FENCE_MARGIN
# The longest countdown a message is sent with (see send_delivery).
MAX_COUNTDOWN = 600.0


@shared_task(
    bind=True,
    name="events.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    # The Delivery and Attempt rows are the record of what happened: a result row per
    # delivery would be two more writes (started, done) that can contradict them.
    ignore_result=True,
    # Infrastructure trouble around the handler (the database went away before the claim or
    # for longer than recording retries last): Celery's autoretry with exponential backoff.
    # Handler failures are retried with the route's own backoff, counted in the database.
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def deliver(self: Any, delivery_id: int) -> dict[str, Any]:
    outcome = execute(int(delivery_id), worker=self.request.hostname or "")
    if outcome.retry_in is not None:
        # A fresh message with a countdown, not self.retry(): the attempt budget lives in the
        # database, and Celery's own retry counter would cap it at max_retries. If sending
        # fails, the delivery is recorded as due at next_attempt_at and the sweeper sends it.
        send_delivery(
            outcome.delivery_id,
            queue=outcome.queue,
            time_limit=outcome.time_limit,
            countdown=outcome.retry_in,
        )
    return {"delivery": outcome.delivery_id, "status": outcome.status}


def send_delivery(
    delivery_id: int, *, queue: str, time_limit: int, countdown: float | None = None
) -> bool:
    """Enqueue one delivery. Returns False (and logs) when the broker cannot be reached."""
    options: dict[str, Any] = {}
    if countdown is not None:
        # The message waits in a worker, unacknowledged, until its countdown; RabbitMQ closes
        # a channel holding one past its consumer_timeout (30 min by default). A longer wait
        # is sent in steps: a message that arrives early is sent again for the rest (claim).
        options["countdown"] = min(countdown, MAX_COUNTDOWN)
    try:
        deliver.apply_async(
            args=(delivery_id,),
            queue=queue,
            soft_time_limit=time_limit,
            time_limit=time_limit + HARD_LIMIT_MARGIN,
            **options,
        )
    except Exception:
        log.exception("could not enqueue delivery %s; the sweeper will send it", delivery_id)
        return False
    return True


@shared_task(name="events.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    report = sweep_deliveries()
    return {
        "resent": report.resent,
        "recovered": report.recovered,
        "dead_lettered": report.dead_lettered,
    }
