"""Retention: deleting old history so the tables do not grow for ever.

``prune`` deletes events that reached a final state before a cutoff, with everything hanging
off them (deliveries, attempts, and what other apps keep per delivery, such as agent steps),
in batches, plus schedule ticks older than the cutoff and the rows other apps prune with the
history (write-tool keys). It never deletes an event that is still in flight (received,
processing, failed and retrying) or one another app holds (an approval still waiting for a
decision or being carried out), and it keeps dead letters unless asked, since someone may
still want to requeue them. Other apps add their holds and rows through events.extensions.

An event's row is also its dedupe record: once pruned, the same sender id is accepted as new.
Keep history longer than any sender retries or replays (Stripe retries for up to three days;
GitHub redeliveries are manual).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet

from . import extensions
from .models import Event, EventStatus, ScheduleTick

FINAL = (EventStatus.PROCESSED, EventStatus.IGNORED)


@dataclass
class PruneReport:
    events: int = 0
    schedule_ticks: int = 0
    # Other apps' rows, by the label they registered (events.extensions.Pruned).
    others: dict[str, int] = field(default_factory=dict)


def events_to_prune(cutoff: datetime, *, include_dead_letters: bool = False) -> QuerySet[Event]:
    """Events received before ``cutoff`` in a final state that no other app holds."""
    statuses = [*FINAL, EventStatus.DEAD_LETTERED] if include_dead_letters else list(FINAL)
    events = Event.objects.filter(received_at__lt=cutoff, status__in=statuses)
    for hold in extensions.retention_holds():
        events = events.exclude(hold)
    return events.order_by("received_at")


def prune(
    cutoff: datetime,
    *,
    include_dead_letters: bool = False,
    batch: int = 500,
    dry_run: bool = False,
    progress: Callable[[PruneReport], None] | None = None,
) -> PruneReport:
    """Delete what is older than ``cutoff`` (see the module docstring); with ``dry_run``,
    count it only. Each batch is its own transaction, so a long prune holds no long locks and
    an interrupted one keeps what it finished."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    report = PruneReport()
    candidates = events_to_prune(cutoff, include_dead_letters=include_dead_letters)
    ticks = ScheduleTick.objects.filter(recorded_at__lt=cutoff)
    others = {item.label: item.older_than(cutoff) for item in extensions.pruned()}
    if dry_run:
        return PruneReport(
            events=candidates.count(),
            schedule_ticks=ticks.count(),
            others={label: rows.count() for label, rows in others.items()},
        )
    while True:
        with transaction.atomic():
            ids = list(candidates.values_list("id", flat=True)[:batch])
            if not ids:
                break
            # Re-checked under the delete: a status that changed since the select keeps its row.
            events = events_to_prune(cutoff, include_dead_letters=include_dead_letters)
            deleted = events.filter(id__in=ids).delete()[1].get(Event._meta.label, 0)
        report.events += deleted
        if progress is not None:
            progress(report)
        if len(ids) < batch:
            break
    report.schedule_ticks = ticks.delete()[0]
    report.others = {label: rows.delete()[0] for label, rows in others.items()}
    return report
