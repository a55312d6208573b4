"""Sending a delivery again: taking back a lost attempt, re-sending a lost message, requeueing
dead letters."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .. import dispatch
from ..models import Delivery, DeliveryStatus, Requeue
from ..status import lock_event, refresh_event_status
from . import flow
from .claiming import mark_lost
from .policy import CLAIM_SKEW, route_settings

log = logging.getLogger("switchyard.pipeline")


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
        mark_lost(delivery, now, why)
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
        flow.wake_after_commit(delivery)
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


def requeue(delivery_ids: Iterable[int], *, by: str = "") -> int:
    """Give dead-lettered deliveries a fresh set of attempts and send each once.

    Only rows still dead-lettered change, so a second click (or two operators at once) finds
    nothing to do. Each requeue is recorded (``Requeue``: ``by``, when, after which attempt)
    for the attempt history. Returns how many were requeued.
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
            # Read under the event lock: no claim can change it while the row is locked.
            after = Delivery.objects.values_list("total_attempts", flat=True).get(id=delivery_id)
            Requeue.objects.create(
                delivery_id=delivery_id,
                after_attempt=after,
                requeued_at=now,
                requeued_by=by[:150],
            )
            rs = route_settings(delivery)
            jobs = [(delivery_id, rs.queue, rs.time_limit)]
            transaction.on_commit(lambda jobs=jobs: dispatch.enqueue(jobs), robust=True)  # type: ignore[misc]
            refresh_event_status(delivery.event_id)
            flow.wake_after_commit(delivery)
            count += 1
    if count:
        log.info("requeued %d dead-lettered deliveries", count)
    return count


def resolve(delivery_ids: Iterable[int], *, by: str) -> int:
    """Close dead letters without running them (an operator judged them handled, or not worth
    running): each goes from dead_lettered to resolved, recording who, and its event's status
    follows. Only rows still dead-lettered change. Returns how many were resolved."""
    count = 0
    now = timezone.now()
    for delivery_id in delivery_ids:
        with transaction.atomic():
            event_id = (
                Delivery.objects.filter(id=delivery_id, status=DeliveryStatus.DEAD_LETTERED)
                .values_list("event_id", flat=True)
                .first()
            )
            if event_id is None:
                continue
            lock_event(event_id)
            won = Delivery.objects.filter(
                id=delivery_id, status=DeliveryStatus.DEAD_LETTERED
            ).update(status=DeliveryStatus.RESOLVED, resolved_at=now, resolved_by=by[:150])
            if not won:
                continue
            refresh_event_status(event_id)
            # A resolved dead letter no longer blocks its key (events.transitions.flow).
            resolved = Delivery.objects.select_related("route", "event").get(id=delivery_id)
            flow.wake_after_commit(resolved)
            count += 1
    if count:
        log.info("%s resolved %d dead-lettered deliveries without running them", by, count)
    return count
