"""Every change of a delivery's status, in one place: claim, renew, succeed, fail, take back,
re-send, requeue.

The task (events.delivery), the lease keeper (events.leases) and the sweeper (events.recovery)
change deliveries only through these functions. Each takes the event's row lock and then updates
the delivery conditionally; the loser of any race changes nothing. ``total_attempts`` is a
fencing token: a worker whose attempt was taken over (its lease lapsed, or its process is known
dead) cannot overwrite the newer attempt's result.

A running delivery holds a short lease (``SWITCHYARD_LEASE_SECONDS``) that its worker renews
while the handler runs; the time limit is enforced on its own (events.leases). A delivery whose
worker died is taken over within about one lease plus one sweep interval, whatever its time
limit, and at once when its message comes back to a worker that can see the holder is gone.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from handlers import registry
from handlers.context import Emitted
from handlers.errors import PermanentError, TransientError

from . import dispatch, rows
from .holders import holder, holder_is_dead
from .models import Attempt, AttemptStatus, Delivery, DeliveryStatus, Event, Route
from .publish import internal_source, publish
from .status import lock_event, refresh_event_status, settle_event_status

log = logging.getLogger("switchyard.pipeline")

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


def claim(delivery_id: int, *, worker: str = "") -> Claim | Outcome:
    """Take the delivery for one attempt, or say why this message has nothing to do.

    A running delivery is taken over when its lease has lapsed, or at once when its holder is
    a process on this machine that no longer exists (a prefork child killed, a worker killed
    whose message the broker gave back): the copy that comes back does the work instead of
    being dropped. A running delivery whose holder is alive is left to it.

    The event's row lock is taken first, so the delivery read after it is current (every
    transition takes that lock before changing a delivery); the claim itself is still a
    conditional update. On the common path: lock, fetch, update, Attempt insert, the event's
    status (one UPDATE that writes only a change), in one short transaction.
    """
    now = timezone.now()
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
        lost = delivery.status == DeliveryStatus.RUNNING and _holder_lost(delivery, now)
        if not (waiting or lost):
            log.info("delivery %s is %s; duplicate message ignored", delivery_id, delivery.status)
            return Outcome(delivery_id, "noop", queue=rs.queue, time_limit=rs.time_limit)
        # Under the event lock the row was read current: match it exactly.
        current = Delivery.objects.filter(
            id=delivery_id, status=delivery.status, total_attempts=delivery.total_attempts
        )

        if lost:
            log.warning(
                "delivery %s: attempt %s was lost (%s); taken over",
                delivery_id,
                delivery.total_attempts,
                lost,
            )
            _mark_lost(delivery, now, lost)
            if delivery.attempts >= rs.max_attempts:
                current.update(
                    status=DeliveryStatus.DEAD_LETTERED,
                    finished_at=now,
                    lease_expires_at=None,
                    error_class="WorkerLost",
                    last_error=f"the worker running the last attempt was lost ({lost})",
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

        fields: dict[str, Any] = {
            "status": DeliveryStatus.RUNNING,
            "lease_expires_at": now + timedelta(seconds=settings.SWITCHYARD_LEASE_SECONDS),
            "lease_holder": holder(),
            "started_at": delivery.started_at or now,
            "resends": 0,
            "resend_after": None,
        }
        # current.update(attempts=F("attempts") + 1, ..., **fields), without compiling it.
        won = rows.update(
            Delivery,
            "id = %s AND status = %s AND total_attempts = %s",
            [delivery_id, delivery.status, delivery.total_attempts],
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


def _holder_lost(delivery: Delivery, now: datetime) -> str:
    """Why the running attempt's worker is known to be gone, or "" if it may be alive."""
    if delivery.lease_expires_at is None or delivery.lease_expires_at < now - CLAIM_SKEW:
        return "its lease lapsed"
    if delivery.lease_holder and holder_is_dead(delivery.lease_holder):
        return "its worker process has exited"
    return ""


def _mark_lost(delivery: Delivery, now: Any, why: str) -> None:
    Attempt.objects.filter(
        delivery=delivery, number=delivery.total_attempts, status=AttemptStatus.RUNNING
    ).update(
        status=AttemptStatus.LOST,
        finished_at=now,
        error_class="WorkerLost",
        error_message=f"no result from the worker: {why}; it is presumed dead",
    )


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it: NUL and lone surrogates escaped, not refused."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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


def renew(held: Iterable[tuple[int, int]], holder: str) -> set[int]:
    """Extend the leases of the running attempts ``held`` ((delivery id, attempt number)) by
    one lease from now; returns the ids whose lease was renewed.

    One statement, no event lock: each row's update is atomic and conditional, so a take-over
    that won first makes the renewal miss (and the late result is fenced off later).
    """
    pairs = list(held)
    if not pairs:
        return set()
    expires = timezone.now() + timedelta(seconds=settings.SWITCHYARD_LEASE_SECONDS)
    table = connection.ops.quote_name(Delivery._meta.db_table)
    which = " OR ".join(["(id = %s AND total_attempts = %s)"] * len(pairs))
    params: list[Any] = [rows.db_value(Delivery, "lease_expires_at", expires)]
    params += [DeliveryStatus.RUNNING, holder]
    params += [value for pair in pairs for value in pair]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET lease_expires_at = %s "  # noqa: S608 - names from the model
            f"WHERE status = %s AND lease_holder = %s AND ({which}) RETURNING id",
            params,
        )
        return {row[0] for row in cursor.fetchall()}


def take_back(delivery_id: int, now: datetime) -> str | None:
    """The sweeper's take-over of a running delivery whose lease has lapsed: retried (and sent
    again), or dead-lettered when it was the last attempt. None when there was nothing to do."""
    cutoff = now - CLAIM_SKEW
    with transaction.atomic():
        delivery = Delivery.objects.select_related("route").filter(id=delivery_id).first()
        if delivery is None:
            return None
        lock_event(delivery.event_id)
        rs = route_settings(delivery)
        current = Delivery.objects.filter(
            id=delivery_id,
            status=DeliveryStatus.RUNNING,
            total_attempts=delivery.total_attempts,
            lease_expires_at__lt=cutoff,
        )
        why = "its lease lapsed"
        _mark_lost(delivery, now, why)
        if delivery.attempts >= rs.max_attempts:
            won = current.update(
                status=DeliveryStatus.DEAD_LETTERED,
                finished_at=now,
                lease_expires_at=None,
                error_class="WorkerLost",
                last_error=f"the worker running the last attempt was lost ({why})",
            )
            status = DeliveryStatus.DEAD_LETTERED
        else:
            won = current.update(
                status=DeliveryStatus.RETRYING,
                lease_expires_at=None,
                next_attempt_at=now,
                enqueued_at=now,
                error_class="WorkerLost",
                last_error=f"the worker running the last attempt was lost ({why})",
            )
            status = DeliveryStatus.RETRYING
            if won:
                jobs = [(delivery_id, rs.queue, rs.time_limit)]
                transaction.on_commit(lambda: dispatch.enqueue(jobs), robust=True)
        if not won:
            transaction.set_rollback(True)
            return None
        refresh_event_status(delivery.event_id)
    return status


# After this many re-sends without the delivery running, the sweeper warns: most likely no
# worker consumes the route's queue.
RESEND_WARN_AFTER = 3


def resend(delivery_id: int, condition: Q, now: datetime, grace: float) -> bool:
    """Ring the bell again for a waiting delivery whose message is overdue (``condition``)."""
    with transaction.atomic():
        delivery = Delivery.objects.select_related("route").filter(id=delivery_id).first()
        if delivery is None:
            return False
        # Wait longer after each re-send that did not lead to a run: grace, 2x, 4x ... 64x.
        backoff = timedelta(seconds=max(grace, 1.0) * 2 ** min(delivery.resends, 6))
        won = Delivery.objects.filter(Q(id=delivery_id) & condition).update(
            enqueued_at=now, resends=F("resends") + 1, resend_after=now + backoff
        )
        if won:
            rs = route_settings(delivery)
            if delivery.resends + 1 >= RESEND_WARN_AFTER:
                log.warning(
                    "delivery %s re-sent %d times without running: does a worker consume queue %r?",
                    delivery_id,
                    delivery.resends + 1,
                    rs.queue,
                )
            jobs = [(delivery_id, rs.queue, rs.time_limit)]
            transaction.on_commit(lambda: dispatch.enqueue(jobs), robust=True)
    return bool(won)


def requeue(delivery_ids: Iterable[int]) -> int:
    """Give dead-lettered deliveries a fresh set of attempts and send each once.

    Only rows still dead-lettered change, so a second click (or two operators at once) finds
    nothing to do. Returns how many were requeued.
    """
    count = 0
    now = timezone.now()
    for delivery_id in delivery_ids:
        with transaction.atomic():
            delivery = Delivery.objects.select_related("route").filter(id=delivery_id).first()
            if delivery is None or delivery.status != DeliveryStatus.DEAD_LETTERED:
                continue
            lock_event(delivery.event_id)
            won = Delivery.objects.filter(
                id=delivery_id, status=DeliveryStatus.DEAD_LETTERED
            ).update(
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                enqueued_at=now,
                finished_at=None,
                lease_expires_at=None,
                resends=0,
                resend_after=None,
            )
            if not won:
                continue
            rs = route_settings(delivery)
            jobs = [(delivery_id, rs.queue, rs.time_limit)]
            transaction.on_commit(lambda jobs=jobs: dispatch.enqueue(jobs), robust=True)  # type: ignore[misc]
            refresh_event_status(delivery.event_id)
            count += 1
    if count:
        log.info("requeued %d dead-lettered deliveries", count)
    return count
