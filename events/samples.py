"""Once a minute, what the pipeline looked like: the dead-letter depth and the backlog per
queue, kept for ``KEEP`` so the dashboard (events.dashboard) can draw them over time.

The sweeper calls ``record`` on every run (events.tasks.sweep, every
``SWITCHYARD_SWEEP_INTERVAL`` seconds); only the first call in a minute writes, and it also
deletes what is older than ``KEEP``. Without beat there are no samples: the dashboard's charts
then have gaps, while its current figures are read live.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from .metrics import backlog_by_queue, dead_letters_by_handler
from .models import PipelineSample

KEEP = timedelta(hours=48)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def record(now: datetime | None = None) -> None:
    """Store this minute's sample unless it exists, and prune the old ones."""
    now = now or timezone.now()
    minute = minute_of(now)
    if PipelineSample.objects.filter(at=minute).exists():
        return
    sample = PipelineSample(
        at=minute,
        dead_letters=sum(dead_letters_by_handler().values()),
        backlog={queue: waiting.count for queue, waiting in backlog_by_queue(now).items()},
    )
    # Two sweeps in the same minute (a manual `manage.py sweep`): the second writes nothing.
    PipelineSample.objects.bulk_create([sample], ignore_conflicts=True)
    PipelineSample.objects.filter(at__lt=minute - KEEP).delete()


def since(start: datetime) -> list[PipelineSample]:
    """The samples from ``start`` on, oldest first."""
    return list(PipelineSample.objects.filter(at__gte=start).order_by("at"))
