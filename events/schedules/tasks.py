"""The one generic schedule task. Thin: read the message, hand the tick to ``ticks``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from . import DUE_HEADER, SCHEDULE_TASK, SENT_HEADER
from .ticks import Tick, handle_tick

log = logging.getLogger("switchyard.ingest")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@shared_task(
    bind=True,
    name=SCHEDULE_TASK,
    ignore_result=True,
    acks_late=True,
    # The database went away: try again. The tick key makes a second try of a tick that did
    # get recorded a duplicate, not a second run.
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def run_schedule(self: Any, *args: Any, **arguments: Any) -> dict[str, Any]:
    """Beat sends this for every schedule tick; the keyword arguments become the payload."""
    request = self.request
    name = getattr(request, "periodic_task_name", None)
    if not name:
        log.error(
            "%s called without a periodic_task_name header: not a schedule tick", SCHEDULE_TASK
        )
        return {"status": "refused"}
    due = parse_time(getattr(request, DUE_HEADER, None))
    sent = parse_time(getattr(request, SENT_HEADER, None))
    message_id = str(request.id or "")
    tick = Tick(
        name=str(name),
        due_at=due or sent or timezone.now(),
        arguments=arguments,
        args=list(args),
        sent_at=sent,
        message_id=message_id,
        key=None if due else f"{name}@message:{message_id}",
    )
    row = handle_tick(tick)
    return {"tick": row.pk, "status": row.status}
