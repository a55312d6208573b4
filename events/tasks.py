"""The Celery tasks, declared. Thin: each calls a plain function and acts on what it says;
messages are sent by events.dispatch."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import DatabaseError

from . import request_log, samples
from .delivery import execute
from .dispatch import send_delivery
from .recovery import sweep as sweep_deliveries
from .replay.runner import REPLAY_TASK, run_started
from .schedules.tasks import run_schedule  # noqa: F401  (registers events.schedule)

log = logging.getLogger("switchyard.pipeline")


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
    # The queue the message came from (how the claim knows whether flow control may apply).
    queue = (self.request.delivery_info or {}).get("routing_key") or ""
    outcome = execute(int(delivery_id), worker=self.request.hostname or "", queue=str(queue))
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


@shared_task(name="events.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    report = sweep_deliveries()
    # The request log keeps its own, shorter history (events.request_log).
    request_log.prune()
    # The dashboard's once-a-minute picture of dead letters and backlog (events.samples).
    samples.record()
    return {
        "resent": report.resent,
        "recovered": report.recovered,
        "dead_lettered": report.dead_lettered,
    }


@shared_task(name=REPLAY_TASK, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def replay(replay_id: int) -> dict[str, Any]:
    """A replay confirmed in the admin. A worker lost midway gets the message again and the
    replay resumes: its copies' external ids make the ones already stored no-ops."""
    done = run_started(int(replay_id))
    return {"replay": replay_id, "status": done.status if done is not None else "skipped"}
