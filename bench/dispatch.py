"""Dispatch latency: from an event's commit to its handler starting, on an idle worker.

One event at a time (the worker idle each time), of type ``test.stamp``, whose handler returns
the time it started; the clock starts in a commit callback registered before publish()'s own,
so it reads the commit, not the send. The reference is a bare Celery task
(``bench.bare_stamp``) sent to the same worker, timed from just before its send to its start.
Both processes read the same clock (one host). The worker is the Procfile's
(``-P threads -c 8``, the default WORKER_CONCURRENCY). Import only after Django is set up.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import redis
from django.db import transaction

from agents_project.celery import app
from events.models import Delivery, DeliveryStatus
from events.publish import publish

from .data import bench_source, clean_slate
from .measure import Measured
from .reference_tasks import STAMP_KEY
from .services import BenchError, WorkerProcess

QUEUE = "dispatch"
STAMP_TYPE = "test.stamp"
P50_LIMIT_MS = 25.0
P99_LIMIT_MS = 100.0
GAP = 0.02  # seconds between events: the worker is idle when each one arrives


@dataclass
class DispatchResults:
    p50: Measured
    p99: Measured
    details: str


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def pipeline_latencies(n: int, worker: WorkerProcess, broker: redis.Redis) -> list[float]:
    source = bench_source()
    clean_slate(broker, queues=(QUEUE,))
    latencies: list[float] = []
    for i in range(n):
        committed: list[float] = []
        with transaction.atomic():
            transaction.on_commit(lambda c=committed: c.append(time.time()))  # type: ignore[misc]
            result = publish(source=source, type=STAMP_TYPE, payload={"n": i})
        deadline = time.monotonic() + 30
        while True:
            row = (
                Delivery.objects.filter(event=result.event, status=DeliveryStatus.SUCCEEDED)
                .values_list("outcome", flat=True)
                .first()
            )
            if row is not None:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"event {i} was not handled within 30 s")
            worker.check_alive()
            time.sleep(0.002)
        latencies.append((float(row["started"]) - committed[0]) * 1000)
        time.sleep(GAP)
    return latencies


def bare_latencies(n: int, worker: WorkerProcess, broker: redis.Redis) -> list[float]:
    broker.delete(STAMP_KEY)
    for i in range(n):
        app.send_task("bench.bare_stamp", args=(time.time(),), queue=QUEUE)
        deadline = time.monotonic() + 30
        while broker.llen(STAMP_KEY) <= i:
            if time.monotonic() > deadline:
                raise BenchError(f"bare task {i} did not start within 30 s")
            worker.check_alive()
            time.sleep(0.002)
        time.sleep(GAP)
    raw = broker.lrange(STAMP_KEY, 0, -1)
    stamps = [(i.decode() if isinstance(i, bytes) else str(i)).split(":") for i in raw]
    return [(float(start) - float(sent)) * 1000 for sent, start in stamps]


def run(n: int, repeats: int, broker: redis.Redis, worker: WorkerProcess) -> DispatchResults:
    p50 = Measured(
        key="dispatch.p50",
        title="dispatch latency p50: event commit to handler start, idle worker",
        unit="ms",
        baseline="target",
        candidate="pipeline",
        digits=1,
    )
    p99 = Measured(
        key="dispatch.p99",
        title="dispatch latency p99: event commit to handler start, idle worker",
        unit="ms",
        baseline="target",
        candidate="pipeline",
        digits=1,
    )
    pipeline_latencies(min(n, 20), worker, broker)  # warm-up
    rows = []
    for r in range(repeats):
        ours = pipeline_latencies(n, worker, broker)
        bare = bare_latencies(n, worker, broker)
        p50.add(P50_LIMIT_MS, percentile(ours, 50))
        p99.add(P99_LIMIT_MS, percentile(ours, 99))
        rows.append(
            f"| {r + 1} | {percentile(ours, 50):.1f} | {percentile(ours, 99):.1f} | "
            f"{max(ours):.1f} | {percentile(bare, 50):.1f} | {percentile(bare, 99):.1f} |"
        )
        print(
            f"  repeat {r + 1}/{repeats}: pipeline p50 {percentile(ours, 50):.1f} ms, "
            f"p99 {percentile(ours, 99):.1f} ms; bare task p50 "
            f"{percentile(bare, 50):.1f} ms, p99 {percentile(bare, 99):.1f} ms; "
            f"mean {statistics.mean(ours):.1f} ms",
            flush=True,
        )
    details = "\n".join(
        [
            f"**Dispatch latency** ({n} events per repeat, one at a time; ms from the commit "
            "to the handler's first line, and for the bare task from its send to its start):",
            "",
            "| Repeat | Pipeline p50 | Pipeline p99 | Pipeline max | Bare task p50 | Bare p99 |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    return DispatchResults(p50=p50, p99=p99, details=details)
