"""What one tick does: decide, record, and (usually) publish.

A tick is one message beat sent for one run time of one schedule. In order:

1. The schedule must still exist and be enabled (the message may predate a delete or a
   disable): else ``skipped``.
2. Under the schedule's row lock (its SchedulePolicy), so two ticks of one schedule decide one
   after the other:
   - another tick with the same key was recorded already (a second beat, a redelivered
     message): ``duplicate``, and nothing runs;
   - later than the schedule's expiry after its due time (it waited in the broker while no
     worker ran, or beat is catching up after downtime): ``expired``. The expiry is the
     schedule's ``expire_seconds``, else ``SWITCHYARD_SCHEDULE_EXPIRES`` capped at the time to
     the next run;
   - overlap policy ``skip`` and an earlier run still has a delivery pending, running or
     retrying: ``skipped``;
   - else publish ``schedule.<name>`` with the schedule's arguments as payload and the tick key
     as external id: ``published`` (or ``duplicate`` if that event exists already).

The tick row and the event are written in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from events import conf

from ..models import (
    Delivery,
    DeliveryStatus,
    Event,
    OverlapPolicy,
    SchedulePolicy,
    ScheduleTick,
    Source,
    TickStatus,
)
from ..publish import PublishError, publish
from . import SCHEDULE_TASK, SOURCE_KIND, SOURCE_SLUG, event_type, tick_key
from .timing import due_time, on_grid

log = logging.getLogger("switchyard.pipeline")
rejected = logging.getLogger("switchyard.ingest")

IN_FLIGHT = (DeliveryStatus.PENDING, DeliveryStatus.RUNNING, DeliveryStatus.RETRYING)


@dataclass(frozen=True)
class Tick:
    """What the message said: the schedule, its arguments, the run time it stands for."""

    name: str
    due_at: datetime
    arguments: dict[str, Any] = field(default_factory=dict)
    args: list[Any] = field(default_factory=list)
    sent_at: datetime | None = None
    message_id: str = ""
    # Set when the message carried no due time (sent by hand, or by another scheduler): the
    # tick is then keyed on the message, since there is no run time to share with a twin.
    key: str | None = None

    @property
    def tick_key(self) -> str:
        return self.key or tick_key(self.name, self.due_at)


def schedules_source_as_routed() -> Source:
    """The schedules source as routing sees it (slug and kind), without creating it: for
    showing which handlers a schedule's ticks reach."""
    return Source(slug=SOURCE_SLUG, kind=SOURCE_KIND)


def schedules_source() -> Source:
    source, _ = Source.objects.get_or_create(
        slug=SOURCE_SLUG,
        defaults={"kind": SOURCE_KIND, "description": "Ticks of the schedules (admin: Schedules)"},
    )
    return source


def policy_for(periodic: PeriodicTask) -> SchedulePolicy:
    policy, _ = SchedulePolicy.objects.get_or_create(periodic_task=periodic)
    return policy


def expiry_seconds(periodic: PeriodicTask, due_at: datetime) -> float:
    """How late a tick may run: the schedule's own expiry if it has one, else the default
    (``SWITCHYARD_SCHEDULE_EXPIRES``) but never past the next run time: by then the next
    tick stands for the same work."""
    if periodic.expire_seconds:
        return float(periodic.expire_seconds)
    default = float(conf.SCHEDULE_EXPIRES.get())
    try:
        schedule = on_grid(periodic.schedule)
    except AttributeError:  # no schedule set: nothing to compare with
        return default
    period = (due_time(schedule, due_at) - due_at).total_seconds()
    return min(default, period) if period > 0 else default


def run_in_flight(source: Source, name: str) -> Delivery | None:
    """The oldest delivery of an earlier run of this schedule that has not finished."""
    return (
        Delivery.objects.filter(
            event__source=source, event__type=event_type(name), status__in=IN_FLIGHT
        )
        .order_by("created_at")
        .first()
    )


def handle_tick(tick: Tick, *, now: datetime | None = None) -> ScheduleTick:
    """Decide what this tick does, record it, and publish its event when it runs."""
    periodic = PeriodicTask.objects.filter(name=tick.name, task=SCHEDULE_TASK).first()
    if periodic is None:
        return _record(
            tick, None, TickStatus.SKIPPED, "no such schedule (deleted or renamed)", now=now
        )
    source = schedules_source()
    policy = policy_for(periodic)
    with transaction.atomic():
        # One tick of a schedule at a time decides: the duplicate and overlap checks below
        # must not race a twin (two workers, two beats).
        SchedulePolicy.objects.select_for_update().filter(pk=policy.pk).first()
        # The decision's time: lateness is measured at it, and the tick is recorded with it.
        decided = now or timezone.now()
        first = (
            ScheduleTick.objects.filter(key=tick.tick_key)
            .exclude(status=TickStatus.DUPLICATE)
            .first()
        )
        if first is not None:
            return _record(
                tick,
                periodic,
                TickStatus.DUPLICATE,
                f"this run time was already {first.status} (tick {first.pk})",
                event=first.event,
                now=decided,
            )
        status, detail = _refusal(tick, periodic, policy, source, decided)
        if status is not None:
            return _record(tick, periodic, status, detail, now=decided)
        try:
            result = publish(
                source=source,
                type=event_type(tick.name),
                payload=tick.arguments,
                external_id=tick.tick_key,
            )
        except PublishError as exc:
            rejected.warning("schedule %s: cannot publish its tick: %s", tick.name, exc)
            return _record(tick, periodic, TickStatus.FAILED, f"cannot publish: {exc}", now=decided)
        if not result.created:
            return _record(
                tick,
                periodic,
                TickStatus.DUPLICATE,
                "an event for this run time exists already",
                event=result.event,
                now=decided,
            )
        return _record(
            tick,
            periodic,
            TickStatus.PUBLISHED,
            f"{result.deliveries} deliveries",
            event=result.event,
            now=decided,
        )


def _refusal(
    tick: Tick,
    periodic: PeriodicTask,
    policy: SchedulePolicy,
    source: Source,
    now: datetime,
) -> tuple[TickStatus | None, str]:
    """Why this tick must not run, if it must not."""
    if not periodic.enabled:
        return TickStatus.SKIPPED, "the schedule is disabled"
    if not source.enabled:
        return TickStatus.SKIPPED, f"the {source.slug!r} source is disabled"
    if tick.args:
        return TickStatus.FAILED, "positional arguments are not supported; use keyword arguments"
    late = (now - tick.due_at).total_seconds()
    window = expiry_seconds(periodic, tick.due_at)
    if late > window:
        return TickStatus.EXPIRED, f"{late:.1f} s after its due time; expires after {window:g} s"
    if policy.overlap == OverlapPolicy.SKIP:
        busy = run_in_flight(source, tick.name)
        if busy is not None:
            return (
                TickStatus.SKIPPED,
                f"the previous run is still in flight (event {busy.event_id}, "
                f"{busy.handler} {busy.status})",
            )
    return None, ""


def _record(
    tick: Tick,
    periodic: PeriodicTask | None,
    status: TickStatus,
    detail: str,
    *,
    event: Event | None = None,
    now: datetime | None = None,
) -> ScheduleTick:
    fields = {
        "recorded_at": now or timezone.now(),
        "schedule": periodic,
        "name": tick.name,
        "key": tick.tick_key,
        "due_at": tick.due_at,
        "sent_at": tick.sent_at,
        "event": event,
        "detail": detail[:500],
        "message_id": tick.message_id[:64],
    }
    try:
        with transaction.atomic():
            row = ScheduleTick.objects.create(status=status, **fields)
    except IntegrityError:
        # A twin got its tick in first (only possible without the row lock, on SQLite).
        row = ScheduleTick.objects.create(
            status=TickStatus.DUPLICATE, **{**fields, "detail": "recorded by a twin first"}
        )
        status = TickStatus.DUPLICATE
    noteworthy = status in (TickStatus.EXPIRED, TickStatus.FAILED)
    (log.warning if noteworthy else log.info)(
        "schedule %s tick due %s: %s%s",
        tick.name,
        tick.due_at.isoformat(),
        status,
        f" ({detail})" if detail else "",
    )
    return row
