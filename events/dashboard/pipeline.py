"""The dashboard's view of the pipeline now and over time: dead letters (now, by handler, and
their depth over the last day), the backlog per queue (now, and over the last hour), and
whether workers and beat are alive. The figures now are the ones ``/metrics`` and ``/readyz``
report (events.metrics, events.liveness); the history comes from the sweeper's once-a-minute
samples (events.samples)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis
from django.urls import reverse
from django.utils.safestring import SafeString

from .. import liveness
from ..metrics import backlog_by_queue, dead_letters_by_handler
from ..models import PipelineSample
from . import charts
from .figures import DAY, HOUR, changelist, clock

# Handlers listed under the dead-letter figure, the most dead letters first.
TOP_DEAD_HANDLERS = 5
# Colours of the backlog chart's lines (CSS classes series-0 to series-7).
SERIES_COLOURS = 8


@dataclass(frozen=True)
class HandlerCount:
    label: str
    count: int
    href: str


@dataclass(frozen=True)
class DeadLetters:
    total: int
    href: str
    by_handler: tuple[HandlerCount, ...]
    chart: SafeString


def dead_letters(now: datetime, samples: list[PipelineSample]) -> DeadLetters:
    by_handler = dead_letters_by_handler()
    total = sum(by_handler.values())
    href = changelist("deadletter")
    start = now - DAY
    points = [(s.at, float(s.dead_letters)) for s in samples if s.at >= start]
    chart = charts.lines(
        [charts.Series("dead letters", "series-dead", (*points, (now, float(total))), href)],
        start=start,
        end=now,
        label="Dead letters, last 24 hours",
        first=clock(start),
        last="now",
    )
    busiest = sorted(by_handler.items(), key=lambda item: (-item[1], item[0]))
    return DeadLetters(
        total,
        href,
        tuple(
            HandlerCount(handler, n, changelist("deadletter", handler=handler))
            for handler, n in busiest[:TOP_DEAD_HANDLERS]
        ),
        chart,
    )


@dataclass(frozen=True)
class QueueBacklog:
    queue: str
    count: int
    waited_seconds: int  # how long the oldest due delivery has waited past its due time
    href: str
    css: str


def backlog_link(queue: str) -> str:
    return changelist("delivery", queue=queue, waiting="due")


@dataclass(frozen=True)
class BacklogPanel:
    queues: tuple[QueueBacklog, ...]  # the queues with a backlog now
    chart: SafeString
    legend: tuple[tuple[str, str], ...]  # (queue, CSS class) of each line in the chart


def backlog(now: datetime, samples: list[PipelineSample]) -> BacklogPanel:
    """The backlog per queue now, and a line per queue over the last hour."""
    current = backlog_by_queue(now)
    start = now - HOUR
    recent = [s for s in samples if s.at >= start]
    queues = sorted(set(current) | {queue for s in recent for queue in s.backlog})
    colour = {queue: f"series-{n % SERIES_COLOURS}" for n, queue in enumerate(queues)}
    rows = tuple(
        QueueBacklog(
            queue,
            waiting.count,
            int((now - waiting.oldest_due).total_seconds()),
            backlog_link(queue),
            colour[queue],
        )
        for queue, waiting in sorted(current.items())
    )
    series = [
        charts.Series(
            queue,
            colour[queue],
            (
                *((s.at, float(s.backlog.get(queue, 0))) for s in recent),
                (now, float(current[queue].count if queue in current else 0)),
            ),
            backlog_link(queue),
        )
        for queue in queues
    ]
    chart = charts.lines(
        series,
        start=start,
        end=now,
        label="Backlog per queue, last hour",
        first=clock(start),
        last="now",
    )
    return BacklogPanel(rows, chart, tuple((queue, colour[queue]) for queue in queues))


@dataclass(frozen=True)
class Liveness:
    workers: tuple[tuple[str, tuple[str, ...]], ...]  # hostname, queues
    workers_check: liveness.Check
    beat_check: liveness.Check
    href: str  # /readyz, which reports the same checks


def alive() -> Liveness:
    """Live workers with their queues, whether they cover every routed queue, and the beat."""
    try:
        workers = liveness.live_workers()
    except (redis.RedisError, OSError) as exc:
        workers_check = liveness.heartbeats_unreadable(exc)
        workers = {}
    else:
        workers_check = liveness.workers_check(workers)
    return Liveness(
        tuple((name, tuple(queues)) for name, queues in sorted(workers.items())),
        workers_check,
        liveness.beat_check(),
        reverse("readyz"),
    )
