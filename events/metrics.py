"""The pipeline's Prometheus metrics (agents_project/prometheus.py: summed over processes).

Counted where they happen: events stored (by source and type), attempts finished (by handler
and outcome), ingest and handler durations. What the database knows (dead letters, the backlog
per queue, the oldest waiting delivery) is read when ``/metrics`` is scraped, by
``PipelineCollector``, with queries on indexed columns; the admin's dashboard
(events.dashboard) reads the same figures. So is each circuit breaker's state, from Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agents_project.prometheus import Counter, Histogram

from . import breakers
from .models import BreakerMode, Delivery, DeliveryStatus, Resource

EVENTS = Counter(
    "switchyard_events_received_total",
    "Events stored (duplicates not counted), by source and type.",
    ["source", "type"],
)
ATTEMPTS = Counter(
    "switchyard_attempts_finished_total",
    "Delivery attempts finished, by handler and outcome: succeeded, retrying (failed, to be "
    "tried again) or dead_lettered.",
    ["handler", "outcome"],
)
DEFERRALS = Counter(
    "switchyard_deferrals_total",
    "Deliveries deferred by a limit before their claim (no attempt spent), by handler.",
    ["handler"],
)
INGEST_SECONDS = Histogram(
    "switchyard_ingest_seconds",
    "Time to take a webhook or API request: read, verify, store and enqueue, or refuse.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HANDLER_SECONDS = Histogram(
    "switchyard_handler_seconds",
    "Time from an attempt's claim to its recorded result, by handler.",
    ["handler"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0),
)

WAITING = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)


def dead_letters_by_handler() -> dict[str, int]:
    """Deliveries dead-lettered and not requeued, by handler (the partial index
    "delivery_dead")."""
    rows = (
        Delivery.objects.filter(status=DeliveryStatus.DEAD_LETTERED)
        .order_by()
        .values("handler")
        .annotate(n=Count("id"))
    )
    return {row["handler"]: row["n"] for row in rows}


@dataclass(frozen=True)
class Backlog:
    count: int
    oldest_due: datetime


def backlog_by_queue(now: datetime) -> dict[str, Backlog]:
    """Deliveries due and not yet running, by queue, with the oldest one's due time (the
    partial index "delivery_waiting")."""
    rows = (
        Delivery.objects.filter(status__in=WAITING, next_attempt_at__lte=now)
        .order_by()
        .values("route__queue")
        .annotate(n=Count("id"), due=Min("next_attempt_at"))
    )
    backlog: dict[str, Backlog] = {}
    for row in rows:
        # A delivery whose route was deleted goes to the default queue.
        queue = row["route__queue"] or "default"
        earlier = backlog.get(queue)
        if earlier is not None:
            row["n"] += earlier.count
            row["due"] = min(row["due"], earlier.oldest_due)
        backlog[queue] = Backlog(row["n"], row["due"])
    return backlog


class PipelineCollector(Collector):
    """Gauges read from the database at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        dead = GaugeMetricFamily(
            "switchyard_dead_letters",
            "Deliveries dead-lettered and not requeued, by handler.",
            labels=["handler"],
        )
        for handler, count in dead_letters_by_handler().items():
            dead.add_metric([handler], count)
        yield dead

        backlog = GaugeMetricFamily(
            "switchyard_backlog",
            "Deliveries due and not yet running (pending, or retrying past their time), by queue.",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "switchyard_oldest_waiting_seconds",
            "How long the longest-waiting due delivery has waited past its due time, by queue.",
            labels=["queue"],
        )
        for queue, waiting in backlog_by_queue(now).items():
            backlog.add_metric([queue], waiting.count)
            oldest.add_metric([queue], (now - waiting.oldest_due).total_seconds())
        yield backlog
        yield oldest

        running = GaugeMetricFamily(
            "switchyard_running", "Deliveries running now (holding a lease)."
        )
        running.add_metric([], Delivery.objects.filter(Q(status=DeliveryStatus.RUNNING)).count())
        yield running

        breaker = GaugeMetricFamily(
            "switchyard_breaker_state",
            "Each resource's circuit breaker: 0 closed, 1 half-open (probing), 2 open "
            "(forced open counts as open, forced closed and disabled as closed).",
            labels=["resource"],
        )
        watched = Resource.objects.exclude(breaker_enabled=False, breaker_mode=BreakerMode.AUTO)
        for resource in watched.order_by("name"):
            state = breakers.effective(breakers.of(resource)).state
            breaker.add_metric([resource.name], BREAKER_VALUES.get(state, 0))
        yield breaker


BREAKER_VALUES = {"half-open": 1, "open": 2, "forced open": 2}
