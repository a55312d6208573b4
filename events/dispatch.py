"""Sending delivery messages: the one place the pipeline puts a delivery on the broker.

publish() sends the deliveries of a new event once its transaction commits; the transitions
send retries, re-sends and requeues the same way, and the lease keeper the retry of an attempt
it fenced. A message carries only the delivery's id; the row is the truth, so a message that
is lost, sent twice or arrives early changes nothing the claim does not check.

The message names the task ``events.deliver`` (declared in events.tasks) rather than importing
it, so nothing that sends depends on what runs.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app

log = logging.getLogger("switchyard.pipeline")

DELIVER_TASK = "events.deliver"
# Seconds a prefork child gets after the soft limit to wrap up before it is killed; the
# threads pool fences an attempt after the same margin (events.leases).
HARD_LIMIT_MARGIN = 10
# The longest countdown a message is sent with (see send_delivery).
MAX_COUNTDOWN = 600.0

# (delivery id, queue, time limit in seconds): what a message needs to be sent.
Job = tuple[int, str, int]


def send_delivery(
    delivery_id: int, *, queue: str, time_limit: int, countdown: float | None = None
) -> bool:
    """Enqueue one delivery. Returns False (and logs) when the broker cannot be reached: the
    row is committed, and the sweeper sends it once its grace period has passed."""
    options: dict[str, Any] = {}
    if countdown is not None:
        # The message waits in a worker, unacknowledged, until its countdown; RabbitMQ closes
        # a channel holding one past its consumer_timeout (30 min by default). A longer wait
        # is sent in steps: a message that arrives early is sent again for the rest (claim).
        options["countdown"] = min(countdown, MAX_COUNTDOWN)
    try:
        current_app.send_task(
            DELIVER_TASK,
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


def enqueue(jobs: list[Job]) -> None:
    """Send one message per delivery. A failure is logged, not raised (see send_delivery)."""
    for delivery_id, queue, time_limit in jobs:
        send_delivery(delivery_id, queue=queue, time_limit=time_limit)
