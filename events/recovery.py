"""Recovery: the sweeper that re-sends lost messages, and requeueing dead letters.

The database, not the broker, is the source of truth; a broker message is only a doorbell. If
Redis loses its queues, a worker is killed mid-task or an enqueue fails after commit, the rows
still say what is owed, and the sweeper rings the bell again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .delivery import _mark_lost, route_settings
from .models import Delivery, DeliveryStatus
from .publish import enqueue
from .status import lock_event, refresh_event_status

log = logging.getLogger("switchyard.pipeline")


@dataclass(frozen=True)
class SweepReport:
    resent: int
    recovered: int
    dead_lettered: int


def sweep(*, now: datetime | None = None, grace: float | None = None) -> SweepReport:
    """Re-send deliveries whose message is overdue, and take back ones whose worker died."""
    now = now or timezone.now()
    grace_s = settings.SWITCHYARD_SWEEP_GRACE if grace is None else grace
    cutoff = now - timedelta(seconds=grace_s)
    batch = settings.SWITCHYARD_SWEEP_BATCH
    recovered = dead = resent = 0

    # Running past the time limit plus grace: the worker is gone (or hopelessly late; its
    # late result will be fenced off by total_attempts).
    running = (
        Delivery.objects.filter(status=DeliveryStatus.RUNNING, lease_expires_at__lt=cutoff)
        .order_by("lease_expires_at")
        .values_list("id", flat=True)[:batch]
    )
    for delivery_id in list(running):
        result = _take_back(delivery_id, cutoff, now)
        if result == DeliveryStatus.RETRYING:
            recovered += 1
        elif result == DeliveryStatus.DEAD_LETTERED:
            dead += 1

    # Pending or retrying past their due time plus grace, and not re-sent within the grace.
    overdue = Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]) & Q(
        next_attempt_at__lt=cutoff
    )
    not_recently_sent = (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff)) & (
        Q(resend_after__isnull=True) | Q(resend_after__lt=now)
    )
    waiting = (
        Delivery.objects.filter(overdue & not_recently_sent)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:batch]
    )
    for delivery_id in list(waiting):
        if _resend(delivery_id, overdue & not_recently_sent, now, grace_s):
            resent += 1

    report = SweepReport(resent=resent, recovered=recovered, dead_lettered=dead)
    if resent or recovered or dead:
        log.warning(
            "sweeper: re-sent %d, took back %d from lost workers, dead-lettered %d",
            resent,
            recovered,
            dead,
        )
    return report


def _take_back(delivery_id: int, cutoff: datetime, now: datetime) -> str | None:
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
        _mark_lost(delivery, now)
        if delivery.attempts >= rs.max_attempts:
            won = current.update(
                status=DeliveryStatus.DEAD_LETTERED,
                finished_at=now,
                lease_expires_at=None,
                error_class="WorkerLost",
                last_error="the worker running the last attempt was lost",
            )
            status = DeliveryStatus.DEAD_LETTERED
        else:
            won = current.update(
                status=DeliveryStatus.RETRYING,
                lease_expires_at=None,
                next_attempt_at=now,
                enqueued_at=now,
                error_class="WorkerLost",
                last_error="the worker running the last attempt was lost",
            )
            status = DeliveryStatus.RETRYING
            if won:
                jobs = [(delivery_id, rs.queue, rs.time_limit)]
                transaction.on_commit(lambda: enqueue(jobs), robust=True)
        if not won:
            transaction.set_rollback(True)
            return None
        refresh_event_status(delivery.event_id)
    return status


# After this many re-sends without the delivery running, the sweeper warns: most likely no
# worker consumes the route's queue.
RESEND_WARN_AFTER = 3


def _resend(delivery_id: int, condition: Q, now: datetime, grace: float) -> bool:
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
            transaction.on_commit(lambda: enqueue(jobs), robust=True)
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
            transaction.on_commit(lambda jobs=jobs: enqueue(jobs), robust=True)  # type: ignore[misc]
            refresh_event_status(delivery.event_id)
            count += 1
    if count:
        log.info("requeued %d dead-lettered deliveries", count)
    return count
