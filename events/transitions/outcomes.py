"""Recording an attempt's result: succeeded, failed and retrying, or dead-lettered."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from events import conf
from handlers.context import Emitted
from handlers.errors import PermanentError, TransientError

from .. import rows
from ..models import Attempt, AttemptStatus, Delivery, DeliveryStatus
from ..publish import internal_source, publish
from ..state import StateWrite, write
from ..status import lock_event, lock_event_sql, settle_event_status, settle_sql
from . import flow
from .claiming import Claim, Outcome
from .policy import backoff_delay

log = logging.getLogger("switchyard.pipeline")


MAX_TRACEBACK = 20_000


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it: NUL and lone surrogates escaped, not refused."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _attempt_row(claimed: Claim) -> tuple[str, list[Any]]:
    """Which Attempt row is the claimed attempt's: by id when the claim knows it."""
    if claimed.attempt_id:
        return "id = %s", [claimed.attempt_id]
    return "delivery_id = %s AND number = %s", [claimed.delivery.id, claimed.number]


def _still_this_attempt(claimed: Claim) -> tuple[str, list[Any]]:
    """The delivery's row, if it is still this attempt's: running, total_attempts its number."""
    where = "id = %s AND status = %s AND total_attempts = %s"
    return where, [claimed.delivery.id, DeliveryStatus.RUNNING, claimed.number]


def _finish(claimed: Claim, fields: dict[str, Any], attempt: dict[str, Any]) -> bool:
    """Record the attempt's end on the delivery (if it is still this attempt's: status running,
    total_attempts its number) and on its Attempt row, and settle the event's status; False if
    the delivery had moved on. On PostgreSQL one statement, like the claim's (events.
    transitions.claiming)."""
    delivery = claimed.delivery
    if connection.vendor != "postgresql":
        if not rows.update(Delivery, *_still_this_attempt(claimed), fields):
            return False
        rows.update(Attempt, *_attempt_row(claimed), attempt)
        settle_event_status(delivery.event_id)
        return True
    with connection.cursor() as cursor:
        cursor.execute(*_finish_sql(claimed, fields, attempt))
        row = cursor.fetchone()
    return bool(row and row[0])


def _finish_at_once(claimed: Claim, fields: dict[str, Any], attempt: dict[str, Any]) -> bool:
    """The event's lock and ``_finish`` (PostgreSQL) as one query string: one round trip and,
    outside a transaction, one transaction of their own (events.rows.batch)."""
    lock = lock_event_sql(claimed.delivery.event_id)
    row = rows.batch([lock, _finish_sql(claimed, fields, attempt)])[1]
    return bool(row and row[0])


def _finish_sql(
    claimed: Claim, fields: dict[str, Any], attempt: dict[str, Any]
) -> tuple[str, list[Any]]:
    """``_finish``'s one statement on PostgreSQL; its row counts the deliveries it changed."""
    delivery = claimed.delivery
    where, where_params = _still_this_attempt(claimed)
    done = "EXISTS (SELECT 1 FROM done)"
    which, which_params = _attempt_row(claimed)
    return rows.together_sql(
        [
            ("done", rows.update_sql(Delivery, where, where_params, fields, returning="id")),
            ("attempt", rows.update_sql(Attempt, f"{which} AND {done}", which_params, attempt)),
            (
                "settled",
                settle_sql(
                    delivery.event_id,
                    changed=(delivery.id, str(fields["status"]), claimed.number),
                    guard=done,
                ),
            ),
        ],
        "SELECT count(*) FROM done",
    )


def duration_ms(started: Any, now: Any) -> int:
    return max(0, int((now - started).total_seconds() * 1000))


def succeed(
    claimed: Claim,
    outcome: dict[str, Any] | None,
    emitted: list[Emitted],
    started: Any,
    state: StateWrite | None = None,
) -> Outcome:
    """Record the success; with ``state``, write the handler's state in the same transaction,
    or raise events.state.StateConflict (and record nothing) when it changed since read."""
    delivery = claimed.delivery
    now = timezone.now()
    fields = {
        "status": DeliveryStatus.SUCCEEDED,
        "outcome": outcome,
        "finished_at": now,
        "lease_expires_at": None,
        "last_error": "",
        "error_class": "",
    }
    attempt = {
        "status": AttemptStatus.SUCCEEDED,
        "finished_at": now,
        "duration_ms": duration_ms(started, now),
        "outcome": outcome,
    }
    if (
        connection.vendor == "postgresql"
        and state is None
        and not emitted
        and not flow.controlled(delivery.route)
    ):
        # Nothing to write but the result, nobody to wake: one round trip.
        won = _finish_at_once(claimed, fields, attempt)
        return _succeeded(claimed) if won else _dropped(claimed)
    with transaction.atomic():
        lock_event(delivery.event_id)
        won = _finish(claimed, fields, attempt)
        if not won:
            return _dropped(claimed)
        if state is not None:
            write(state, delivery.id)
        if emitted:
            source = internal_source()
            for index, item in enumerate(emitted):
                publish(
                    source=source,
                    type=item.type,
                    payload=dict(item.payload),
                    # Stable per (delivery, position): a re-run cannot emit twice.
                    external_id=f"{delivery.id}:{index}",
                    partition_key=item.partition_key or delivery.event.partition_key or None,
                    emitted_by=delivery,
                )
        flow.wake_after_commit(delivery)
    return _succeeded(claimed)


def _succeeded(claimed: Claim) -> Outcome:
    delivery = claimed.delivery
    log.info(
        "delivery %s (%s) succeeded on attempt %s", delivery.id, delivery.handler, claimed.number
    )
    return Outcome(delivery.id, DeliveryStatus.SUCCEEDED)


def _dropped(claimed: Claim) -> Outcome:
    log.warning(
        "delivery %s attempt %s finished after its lease was taken over; result dropped",
        claimed.delivery.id,
        claimed.number,
    )
    return Outcome(claimed.delivery.id, "noop")


def error_class_name(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def fail(
    claimed: Claim,
    exc: BaseException,
    traceback: str,
    started: Any,
    redact: Callable[[str], str] = storable,
) -> Outcome:
    """``redact`` makes the message and traceback storable and replaces known secrets."""
    delivery = claimed.delivery
    rs = claimed.route
    now = timezone.now()
    message = redact(str(exc) or error_class_name(exc))
    traceback = redact(traceback)
    permanent = isinstance(exc, PermanentError)
    exhausted = claimed.attempts >= rs.max_attempts
    delay: float | None = None
    if permanent or exhausted:
        status = DeliveryStatus.DEAD_LETTERED
    else:
        status = DeliveryStatus.RETRYING
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        if retry_after is not None and retry_after >= 0:
            delay = min(float(retry_after), float(conf.MAX_BACKOFF.get()))
        else:
            delay = backoff_delay(
                claimed.attempts, rs.backoff_base, rs.backoff_max, rs.backoff_jitter
            )
    with transaction.atomic():
        lock_event(delivery.event_id)
        fields: dict[str, Any] = {
            "status": status,
            "lease_expires_at": None,
            "last_error": message[:MAX_TRACEBACK],
            "error_class": error_class_name(exc)[:200],
        }
        if status == DeliveryStatus.DEAD_LETTERED:
            fields["finished_at"] = now
        else:
            assert delay is not None
            fields["next_attempt_at"] = now + timedelta(seconds=delay)
            fields["enqueued_at"] = now
        won = _finish(
            claimed,
            fields,
            {
                "status": AttemptStatus.FAILED,
                "finished_at": now,
                "duration_ms": duration_ms(started, now),
                "error_class": error_class_name(exc)[:200],
                "error_message": message[:MAX_TRACEBACK],
                "traceback": traceback[-MAX_TRACEBACK:],
                "retry_delay": delay,
            },
        )
        if not won:
            log.warning(
                "delivery %s attempt %s failed after its lease was taken over; result dropped",
                delivery.id,
                claimed.number,
            )
            return Outcome(delivery.id, "noop")
        # A retry frees a slot of the cap (its key stays blocked until it ends).
        flow.wake_after_commit(delivery)
    if status == DeliveryStatus.DEAD_LETTERED:
        why = "permanent error" if permanent else f"{claimed.attempts} attempts used"
        log.warning(
            "delivery %s (%s) dead-lettered (%s): %s", delivery.id, delivery.handler, why, message
        )
    else:
        log.info(
            "delivery %s (%s) attempt %s failed, retrying in %.1f s: %s",
            delivery.id,
            delivery.handler,
            claimed.number,
            delay,
            message,
        )
    return Outcome(delivery.id, status, retry_in=delay, queue=rs.queue, time_limit=rs.time_limit)
