"""Celery tasks. Thin: load by id, call a plain function, act on what it says."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import Retry
from django.db import DatabaseError

from .delivery import execute
from .recovery import sweep as sweep_deliveries

log = logging.getLogger("switchyard.pipeline")

# Seconds a prefork child gets after the soft limit to wrap up before it is killed.
HARD_LIMIT_MARGIN = 10


@shared_task(
    bind=True,
    name="events.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    # Infrastructure trouble before or after the handler (the database went away): Celery's
    # autoretry with exponential backoff. Handler failures are retried below with the route's
    # own backoff, counted in the database, not in the message.
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def deliver(self: Any, delivery_id: int) -> dict[str, Any]:
    outcome = execute(int(delivery_id), worker=self.request.hostname or "")
    if outcome.retry_in is not None:
        try:
            raise self.retry(
                countdown=outcome.retry_in,
                max_retries=None,  # the route's max_attempts, counted in the database, decides
                queue=outcome.queue,
                soft_time_limit=outcome.time_limit,
                time_limit=outcome.time_limit + HARD_LIMIT_MARGIN,
            )
        except Retry:
            raise
        except Exception:
            # The retry message could not be sent (broker down). The delivery is recorded as
            # retrying with its due time; the sweeper sends it once that time plus grace passes.
            log.exception("could not schedule the retry of delivery %s", delivery_id)
    return {"delivery": outcome.delivery_id, "status": outcome.status}


def send_delivery(delivery_id: int, *, queue: str, time_limit: int) -> bool:
    """Enqueue one delivery. Returns False (and logs) when the broker cannot be reached."""
    try:
        deliver.apply_async(
            args=(delivery_id,),
            queue=queue,
            soft_time_limit=time_limit,
            time_limit=time_limit + HARD_LIMIT_MARGIN,
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
