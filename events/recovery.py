"""Recovery: the sweeper that re-sends lost messages, and requeueing dead letters.

The database, not the broker, is the source of truth; a broker message is only a doorbell. If
Redis loses its queues, a worker is killed mid-task or an enqueue fails after commit, the rows
still say what is owed, and the sweeper rings the bell again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from events import conf

from .models import Delivery, DeliveryStatus
from .transitions import CLAIM_SKEW, requeue, resend, take_back

__all__ = ["SweepReport", "requeue", "sweep"]

log = logging.getLogger("switchyard.pipeline")


@dataclass(frozen=True)
class SweepReport:
    resent: int
    recovered: int
    dead_lettered: int


def sweep(*, now: datetime | None = None, grace: float | None = None) -> SweepReport:
    """Re-send deliveries whose message is overdue, and take back ones whose worker died.

    ``grace``: how long past its due time a waiting delivery's message may be before it is sent
    again (``SWITCHYARD_SWEEP_GRACE``). Running deliveries are judged by their lease alone.
    """
    now = now or timezone.now()
    grace_s = conf.SWEEP_GRACE.get() if grace is None else grace
    cutoff = now - timedelta(seconds=grace_s)
    batch = conf.SWEEP_BATCH.get()
    recovered = dead = resent = 0

    # Running with a lapsed lease: its worker stopped renewing it, so it is gone (or cut off;
    # a late result is fenced off by total_attempts). The lease is short whatever the time
    # limit: a dead worker's delivery is taken back within a lease and a sweep interval.
    running = (
        Delivery.objects.filter(
            status=DeliveryStatus.RUNNING, lease_expires_at__lt=now - CLAIM_SKEW
        )
        .order_by("lease_expires_at")
        .values_list("id", flat=True)[:batch]
    )
    for delivery_id in list(running):
        result = take_back(delivery_id, now)
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
        if resend(delivery_id, overdue & not_recently_sent, now, grace_s):
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
