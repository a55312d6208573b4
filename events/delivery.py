"""Running one delivery: claim it, record the attempt, call the handler, record the result.

Every transition takes the event's row lock and then updates the delivery conditionally; the
loser of any race changes nothing. ``total_attempts`` is a fencing token: a worker whose lease
was taken over (it was presumed dead) cannot overwrite the newer attempt's result.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
import traceback as tb_module
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from agents_project.db import release_connections
from handlers import registry
from handlers.context import Emitted, EventData, HandlerContext
from handlers.errors import PermanentError, TransientError

from . import rows
from .agent_models import RunSettings
from .approvals import requester
from .models import Attempt, AttemptStatus, Delivery, DeliveryStatus, Event, Route
from .publish import PublishError, check_fields, check_payload, internal_source, publish
from .status import lock_event, settle_event_status
from .traces import Sanitiser, recorder, sanitiser_for

log = logging.getLogger("switchyard.pipeline")
handler_log = logging.getLogger("switchyard.handlers")

# A message may arrive a little before its next_attempt_at (clock skew between hosts).
CLAIM_SKEW = timedelta(seconds=2)
MAX_TRACEBACK = 20_000


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


def route_settings(delivery: Delivery) -> RouteSettings:
    route: Route | None = delivery.route
    if route is not None:
        return RouteSettings(
            max_attempts=route.max_attempts,
            time_limit=min(route.time_limit, settings.SWITCHYARD_MAX_TIME_LIMIT),
            backoff_base=route.backoff_base,
            backoff_max=min(route.backoff_max, settings.SWITCHYARD_MAX_BACKOFF),
            backoff_jitter=route.backoff_jitter,
            queue=route.queue,
            stale_after=route.stale_after,
        )
    spec = registry.get(delivery.handler)
    return RouteSettings(
        max_attempts=spec.max_attempts if spec else 1,
        time_limit=min(spec.time_limit if spec else 60, settings.SWITCHYARD_MAX_TIME_LIMIT),
        backoff_base=spec.backoff_base if spec else 2.0,
        backoff_max=min(spec.backoff_max if spec else 600.0, settings.SWITCHYARD_MAX_BACKOFF),
        backoff_jitter=0.25,
        queue=spec.queue if spec else "default",
        stale_after=spec.stale_after if spec else None,
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


@dataclass(frozen=True)
class Outcome:
    """What happened to one task run, for the Celery task to act on."""

    delivery_id: int
    status: str  # a DeliveryStatus value, or "noop" when this copy had nothing to do
    retry_in: float | None = None
    queue: str = "default"
    time_limit: int = 60


@dataclass(frozen=True)
class Claim:
    delivery: Delivery
    number: int  # the Attempt number, also the fencing token
    attempts: int  # attempts in the current cycle, this one included
    route: RouteSettings
    attempt_id: int = 0  # the Attempt row this run records into


_claimable_waiting = Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING])


def _lock_for(delivery_id: int) -> bool:
    """Lock the event of ``delivery_id`` (one statement); False if it is gone."""
    lock = " FOR UPDATE OF e" if connection.features.has_select_for_update_of else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.status FROM {Event._meta.db_table} e "  # noqa: S608
            f"JOIN {Delivery._meta.db_table} d ON d.event_id = e.id WHERE d.id = %s{lock}",
            [delivery_id],
        )
        row = cursor.fetchone()
    return row is not None


def claim(
    delivery_id: int, *, worker: str = "", message_time_limit: float | None = None
) -> Claim | Outcome:
    """Take the delivery for one attempt, or say why this message has nothing to do.

    ``message_time_limit`` is the soft limit the message was sent with; the lease covers it
    even if the route's limit was lowered since, so a legitimately running attempt is never
    taken over early.

    The event's row lock is taken first, so the delivery read after it is current (every
    transition takes that lock before changing a delivery); the claim itself is still a
    conditional update. On the common path: lock, fetch, update, Attempt insert, the event's
    status (one UPDATE that writes only a change), in one short transaction.
    """
    now = timezone.now()
    grace = timedelta(seconds=settings.SWITCHYARD_SWEEP_GRACE)
    with transaction.atomic():
        locked = _lock_for(delivery_id)
        delivery = rows.fetch_delivery(delivery_id) if locked else None
        if delivery is None:
            log.warning("delivery %s no longer exists; message dropped", delivery_id)
            return Outcome(delivery_id, "noop")
        rs = route_settings(delivery)
        waiting = delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
        if waiting and delivery.next_attempt_at > now + CLAIM_SKEW:
            # Early: a copy sent ahead of a retry, or a clock ahead of ours wrote the due time.
            # Send it again for the due time rather than drop the only message there may be.
            wait = (delivery.next_attempt_at - now).total_seconds()
            log.info("delivery %s is due in %.1f s; message re-sent for then", delivery_id, wait)
            return Outcome(
                delivery_id, "early", retry_in=wait, queue=rs.queue, time_limit=rs.time_limit
            )
        lapsed = (
            delivery.status == DeliveryStatus.RUNNING
            and delivery.lease_expires_at is not None
            and delivery.lease_expires_at < now - grace
        )
        if not (waiting or lapsed):
            log.info("delivery %s is %s; duplicate message ignored", delivery_id, delivery.status)
            return Outcome(delivery_id, "noop", queue=rs.queue, time_limit=rs.time_limit)
        claimable = _claimable_waiting | Q(
            status=DeliveryStatus.RUNNING, lease_expires_at__lt=now - grace
        )
        current = Delivery.objects.filter(id=delivery_id).filter(claimable)

        if lapsed:
            _mark_lost(delivery, now)
            if delivery.attempts >= rs.max_attempts:
                current.update(
                    status=DeliveryStatus.DEAD_LETTERED,
                    finished_at=now,
                    lease_expires_at=None,
                    error_class="WorkerLost",
                    last_error="the worker running the last attempt was lost",
                )
                settle_event_status(delivery.event_id)
                return Outcome(delivery_id, DeliveryStatus.DEAD_LETTERED)

        # A delivery an operator requeued (fresh cycle, but run before) is run even if stale.
        requeued = delivery.attempts == 0 and delivery.total_attempts > 0
        if (
            rs.stale_after is not None
            and not requeued
            and delivery.event.received_at < now - timedelta(seconds=rs.stale_after)
        ):
            current.update(
                status=DeliveryStatus.SKIPPED,
                finished_at=now,
                lease_expires_at=None,
                error_class="Stale",
                last_error=f"event older than the route's stale_after of {rs.stale_after} s",
            )
            settle_event_status(delivery.event_id)
            return Outcome(delivery_id, DeliveryStatus.SKIPPED)

        lease = max(float(rs.time_limit), float(message_time_limit or 0))
        fields: dict[str, Any] = {
            "status": DeliveryStatus.RUNNING,
            "lease_expires_at": now + timedelta(seconds=lease),
            "started_at": delivery.started_at or now,
            "resends": 0,
            "resend_after": None,
        }
        # current.update(attempts=F("attempts") + 1, ..., **fields), without compiling it.
        won = rows.update(
            Delivery,
            "id = %s AND (status IN (%s, %s) OR (status = %s AND lease_expires_at < %s))",
            [
                delivery_id,
                DeliveryStatus.PENDING,
                DeliveryStatus.RETRYING,
                DeliveryStatus.RUNNING,
                rows.db_value(Delivery, "lease_expires_at", now - grace),
            ],
            fields,
            raw={"attempts": "attempts + 1", "total_attempts": "total_attempts + 1"},
        )
        if not won:  # cannot happen under the lock; kept as the fence it is meant to be
            log.info("delivery %s changed under its claim; message ignored", delivery_id)
            return Outcome(delivery_id, "noop", queue=rs.queue, time_limit=rs.time_limit)
        # Under the lock the row was read current: the update's effect is known without
        # reading it back.
        for name, value in fields.items():
            setattr(delivery, name, value)
        delivery.attempts += 1
        delivery.total_attempts += 1
        attempt_id = rows.insert_attempt(delivery, delivery.total_attempts, now, worker[:200])
        settle_event_status(delivery.event_id)
    return Claim(
        delivery=delivery,
        number=delivery.total_attempts,
        attempts=delivery.attempts,
        route=rs,
        attempt_id=attempt_id,
    )


def _mark_lost(delivery: Delivery, now: Any) -> None:
    Attempt.objects.filter(
        delivery=delivery, number=delivery.total_attempts, status=AttemptStatus.RUNNING
    ).update(
        status=AttemptStatus.LOST,
        finished_at=now,
        error_class="WorkerLost",
        error_message="no result before the lease expired; the worker is presumed dead",
    )


_T = TypeVar("_T")


def _releasing(fn: Callable[..., _T]) -> Callable[..., _T]:
    """``fn``, giving this thread's pooled database connection back once it returns."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> _T:
        try:
            return fn(*args, **kwargs)
        finally:
            release_connections()

    return call


def build_context(
    delivery: Delivery, number: int, attempt_id: int | None = None, clean: Sanitiser | None = None
) -> HandlerContext:
    event = delivery.event
    clean = clean or sanitiser_for(delivery)
    # The override and the budget's presence are read in one query, when the agent asks.
    agent_settings = RunSettings(delivery.handler)
    return HandlerContext(
        event=EventData(
            id=str(event.id),
            type=event.type,
            payload=event.payload,
            source=event.source.slug,
            external_id=event.external_id,
            partition_key=event.partition_key,
            schema_version=event.schema_version,
            received_at=event.received_at.isoformat(),
        ),
        attempt=number,
        handler=delivery.handler,
        idempotency_key=f"{event.id}:{delivery.handler}",
        logger=logging.LoggerAdapter(
            handler_log, {"event_id": str(event.id), "handler": delivery.handler}
        ),
        # Each callback below is one short write or read; its connection goes back to the pool
        # when it returns, so a handler waiting on the model holds none.
        # Writes each agent step as a Step of this attempt as it completes (events.traces).
        record_step=_releasing(recorder(delivery, number, clean, attempt_id=attempt_id)),
        # The handler's daily AgentBudget, asked before each LLM call (events.budgets).
        budget_check=_releasing(agent_settings.budget_check),
        # Writes that need a person file an Approval instead of acting (events.approvals).
        request_approval=_releasing(requester(delivery)),
        # Secret values never reach the model, even if a tool returns one.
        redact=clean.text,
        # The admin's model override for this handler (events.agent_models).
        model_override=_releasing(agent_settings.model_override),
    )


def execute(
    delivery_id: int, *, worker: str = "", message_time_limit: float | None = None
) -> Outcome:
    """One task run: claim, call the handler outside any transaction, record the result."""
    claimed = claim(delivery_id, worker=worker, message_time_limit=message_time_limit)
    if isinstance(claimed, Outcome):
        return claimed
    delivery = claimed.delivery
    started = timezone.now()
    spec = registry.get(delivery.handler)
    # Known secrets (the environment's, the source's) are replaced in whatever this run stores:
    # steps, the outcome, emitted events, the error and its traceback; the API and the admin
    # show only what is stored.
    clean = sanitiser_for(delivery)
    ctx = build_context(delivery, claimed.number, claimed.attempt_id or None, clean)
    ctx.deadline = time.monotonic() + claimed.route.time_limit
    # The handler may wait for seconds (an agent on its model): it starts holding no
    # connection, and takes one from the pool only for the writes it makes.
    release_connections()
    try:
        if spec is None:
            # Transient: during a rolling deploy an older worker may not know a new handler.
            raise TransientError(f"handler {delivery.handler!r} is not registered on {worker!r}")
        result = spec.fn(ctx)
        _report_overrun(claimed, ctx)
        outcome = _check_outcome(result)
        _check_emitted(ctx.emitted)
    except GeneratorExit:
        raise
    except BaseException as exc:
        _report_overrun(claimed, ctx)
        # SystemExit and KeyboardInterrupt too: left to Celery, they would leave the message
        # unacked and the delivery running with no trace of why.
        recorded = _record(fail, claimed, exc, tb_module.format_exc(), started, clean.text)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return recorded
    if outcome is not None:
        outcome = clean.json(outcome)
    emitted = [
        replace(item, payload=clean.json(dict(item.payload)), partition_key=_clean_key(item, clean))
        for item in ctx.emitted
    ]
    return _record(succeed, claimed, outcome, emitted, started)


def _report_overrun(claimed: Claim, ctx: HandlerContext) -> None:
    """Say so when a handler returned after its time limit: under the threads pool nothing
    stops it, its lease may have lapsed and another worker taken the delivery over (then its
    result is dropped by the conditional update that records it)."""
    if ctx.deadline is None:
        return
    over = time.monotonic() - ctx.deadline
    if over > 0:
        log.warning(
            "delivery %s (%s) attempt %s ran %.1f s past its time limit of %s s",
            claimed.delivery.id,
            claimed.delivery.handler,
            claimed.number,
            over,
            claimed.route.time_limit,
        )


def _clean_key(item: Emitted, clean: Sanitiser) -> str | None:
    return clean.text(item.partition_key) if item.partition_key else item.partition_key


# Pauses between tries to record a result when the database drops the connection. The handler
# has already run; giving up here would leave the delivery running until the sweeper took it
# back and ran the handler again.
RECORD_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)
_RecordFn = Callable[..., Outcome]


def _record(fn: _RecordFn, *args: Any) -> Outcome:
    for delay in (*RECORD_RETRY_DELAYS, None):
        try:
            return fn(*args)
        except (OperationalError, InterfaceError):
            if delay is None:
                raise
            log.warning(
                "recording a result failed on a database error; trying again", exc_info=True
            )
            connection.close()
            time.sleep(delay)
    raise AssertionError("unreachable")


MAX_OUTCOME_BYTES = 256 * 1024


def _check_outcome(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    if not isinstance(result, dict):
        raise PermanentError(f"handler returned {type(result).__name__}; expected dict or None")
    try:
        encoded = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"handler outcome is not JSON: {exc}") from None
    if len(encoded) > MAX_OUTCOME_BYTES:
        raise PermanentError(
            f"handler outcome is {len(encoded)} bytes; the limit is {MAX_OUTCOME_BYTES}"
        )
    try:
        check_payload(result)
    except PublishError as exc:
        raise PermanentError(f"handler outcome cannot be stored: {exc}") from None
    return result


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it: NUL and lone surrogates escaped, not refused."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_emitted(emitted: list[Emitted]) -> None:
    for item in emitted:
        try:
            check_fields(item.type, None, item.partition_key, 1)
            check_payload(dict(item.payload))
        except PublishError as exc:
            raise PermanentError(f"emitted event {item.type!r} is invalid: {exc}") from None


def _update_attempt(claimed: Claim, **values: Any) -> None:
    """Record the attempt's result on its row (by id when the claim knows it)."""
    if claimed.attempt_id:
        rows.update(Attempt, "id = %s", [claimed.attempt_id], values)
    else:
        Attempt.objects.filter(delivery=claimed.delivery, number=claimed.number).update(**values)


def _duration_ms(started: Any, now: Any) -> int:
    return max(0, int((now - started).total_seconds() * 1000))


def succeed(
    claimed: Claim, outcome: dict[str, Any] | None, emitted: list[Emitted], started: Any
) -> Outcome:
    delivery = claimed.delivery
    now = timezone.now()
    with transaction.atomic():
        lock_event(delivery.event_id)
        won = rows.update(
            Delivery,
            "id = %s AND status = %s AND total_attempts = %s",
            [delivery.id, DeliveryStatus.RUNNING, claimed.number],
            {
                "status": DeliveryStatus.SUCCEEDED,
                "outcome": outcome,
                "finished_at": now,
                "lease_expires_at": None,
                "last_error": "",
                "error_class": "",
            },
        )
        if not won:
            log.warning(
                "delivery %s attempt %s finished after its lease was taken over; result dropped",
                delivery.id,
                claimed.number,
            )
            return Outcome(delivery.id, "noop")
        _update_attempt(
            claimed,
            status=AttemptStatus.SUCCEEDED,
            finished_at=now,
            duration_ms=_duration_ms(started, now),
            outcome=outcome,
        )
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
        settle_event_status(delivery.event_id)
    log.info(
        "delivery %s (%s) succeeded on attempt %s", delivery.id, delivery.handler, claimed.number
    )
    return Outcome(delivery.id, DeliveryStatus.SUCCEEDED)


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
            delay = min(float(retry_after), float(settings.SWITCHYARD_MAX_BACKOFF))
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
        won = rows.update(
            Delivery,
            "id = %s AND status = %s AND total_attempts = %s",
            [delivery.id, DeliveryStatus.RUNNING, claimed.number],
            fields,
        )
        if not won:
            log.warning(
                "delivery %s attempt %s failed after its lease was taken over; result dropped",
                delivery.id,
                claimed.number,
            )
            return Outcome(delivery.id, "noop")
        _update_attempt(
            claimed,
            status=AttemptStatus.FAILED,
            finished_at=now,
            duration_ms=_duration_ms(started, now),
            error_class=error_class_name(exc)[:200],
            error_message=message[:MAX_TRACEBACK],
            traceback=traceback[-MAX_TRACEBACK:],
            retry_delay=delay,
        )
        settle_event_status(delivery.event_id)
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
