"""The dashboard's event figures: events received over the last hour and day by what became of
them, events per minute by outcome, and handler durations. Each is one query on an indexed
column over a bounded time window, and each figure carries the link to the list behind it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Q
from django.db.models.functions import TruncMinute
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from ..models import Attempt, Event, EventStatus
from . import charts

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Handlers shown in the durations chart, the busiest first.
TOP_HANDLERS = 10
# Without PostgreSQL's percentile_cont, durations are read row by row: at most this many.
MAX_DURATIONS_READ = 20_000

# What the figures count, as (key, label, event statuses); None: every event received.
KINDS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("received", "received", None),
    ("processed", "processed", (EventStatus.PROCESSED,)),
    ("failed", "failed (retrying)", (EventStatus.FAILED,)),
    ("dead_lettered", "dead-lettered", (EventStatus.DEAD_LETTERED,)),
    ("waiting", "waiting", (EventStatus.RECEIVED, EventStatus.PROCESSING)),
)
# The events-per-minute chart's stacks, bottom up.
OUTCOMES = (
    EventStatus.PROCESSED,
    EventStatus.IGNORED,
    EventStatus.PROCESSING,
    EventStatus.RECEIVED,
    EventStatus.FAILED,
    EventStatus.DEAD_LETTERED,
)


def changelist(model: str, **params: Any) -> str:
    """The admin list of ``events.<model>``, filtered by ``params`` (datetimes as ISO 8601)."""
    url = reverse(f"admin:events_{model}_changelist")
    query = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in params.items()
    }
    return f"{url}?{urlencode(query)}" if query else url


def events_link(statuses: tuple[str, ...] | None, **window: datetime) -> str:
    """The events list for ``statuses`` (None: all) received in ``window``
    (``received_at__gte``, ``received_at__lt``)."""
    params: dict[str, Any] = {f"received_at__{key}": value for key, value in window.items()}
    if statuses is not None and len(statuses) == 1:
        params["status"] = statuses[0]
    elif statuses is not None:
        params["status__in"] = ",".join(statuses)
    return changelist("event", **params)


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    count: int
    href: str


@dataclass(frozen=True)
class Window:
    key: str  # hour or day
    title: str
    since: datetime
    figures: tuple[Figure, ...]


def event_windows(now: datetime) -> list[Window]:
    """Events received in the last hour and the last day, by what became of them: one query
    over the day's part of the index "event_recv_status"."""
    windows = (("hour", "Last hour", now - HOUR), ("day", "Last 24 hours", now - DAY))
    counts: dict[str, Any] = {}
    for name, _, since in windows:
        in_window = Q(received_at__gte=since)
        for key, _, statuses in KINDS:
            matching = in_window if statuses is None else in_window & Q(status__in=statuses)
            counts[f"{name}_{key}"] = Count("pk", filter=matching)
    totals = Event.objects.filter(received_at__gte=now - DAY).aggregate(**counts)
    return [
        Window(
            name,
            title,
            since,
            tuple(
                Figure(key, label, totals[f"{name}_{key}"], events_link(statuses, gte=since))
                for key, label, statuses in KINDS
            ),
        )
        for name, title, since in windows
    ]


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def clock(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%H:%M")


def events_per_minute(now: datetime) -> SafeString:
    """Events of the last 60 minutes (this one included) per minute, stacked by status."""
    start = minute_of(now) - timedelta(minutes=59)
    rows = (
        Event.objects.filter(received_at__gte=start)
        .annotate(minute=TruncMinute("received_at"))
        .order_by()
        .values("minute", "status")
        .annotate(n=Count("pk"))
    )
    counts = {(row["minute"].timestamp(), row["status"]): row["n"] for row in rows}
    cols = []
    for n in range(60):
        minute = start + timedelta(minutes=n)
        segments = []
        for status in OUTCOMES:
            count = counts.get((minute.timestamp(), status), 0)
            segments.append(
                charts.Segment(
                    count,
                    f"status-{status}",
                    f"{clock(minute)}: {count} {status.label}",
                    events_link((status,), gte=minute, lt=minute + timedelta(minutes=1)),
                )
            )
        cols.append(charts.Column(clock(minute), tuple(segments)))
    return charts.columns(cols, label="Events per minute by status, last hour", width=charts.WIDE)


# --- Handler durations ----------------------------------------------------------------------


class Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


@dataclass(frozen=True)
class Duration:
    handler: str
    attempts: int
    p50_ms: float
    p95_ms: float


def handler_durations(now: datetime) -> list[Duration]:
    """p50 and p95 of the attempts started in the last hour that finished, per handler, the
    busiest ``TOP_HANDLERS``; through the index "attempt_started"."""
    attempts = Attempt.objects.filter(started_at__gte=now - HOUR, duration_ms__isnull=False)
    if connection.vendor == "postgresql":
        rows = (
            attempts.order_by()
            .values(handler=F("delivery__handler"))
            .annotate(
                n=Count("pk"),
                p50=Percentile("duration_ms", fraction=0.5),
                p95=Percentile("duration_ms", fraction=0.95),
            )
            .order_by("-n", "handler")[:TOP_HANDLERS]
        )
        return [Duration(r["handler"], r["n"], r["p50"], r["p95"]) for r in rows]
    # SQLite (the demo): the newest attempts, the percentiles worked out here.
    by_handler: dict[str, list[int]] = {}
    newest = attempts.order_by("-started_at").values_list("delivery__handler", "duration_ms")
    for handler, ms in newest[:MAX_DURATIONS_READ]:
        by_handler.setdefault(handler, []).append(ms or 0)  # never None: filtered above
    busiest = sorted(by_handler.items(), key=lambda item: (-len(item[1]), item[0]))
    return [
        Duration(handler, len(ms), percentile(ms, 0.5), percentile(ms, 0.95))
        for handler, ms in busiest[:TOP_HANDLERS]
    ]


def percentile(values: list[int], fraction: float) -> float:
    """As percentile_cont: interpolated between the two nearest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def milliseconds(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def durations_chart(durations: list[Duration]) -> SafeString:
    rows = [
        charts.Bar(
            d.handler,
            (
                charts.Segment(d.p50_ms, "p50", f"{d.handler}: p50 {milliseconds(d.p50_ms)}"),
                charts.Segment(d.p95_ms, "p95", f"{d.handler}: p95 {milliseconds(d.p95_ms)}"),
            ),
            f"{milliseconds(d.p50_ms)} / {milliseconds(d.p95_ms)}",
            changelist("delivery", handler=d.handler),
        )
        for d in durations
    ]
    return charts.bars(rows, label="Handler duration p50 and p95, last hour")
