"""Delivery throughput through a real `celery worker`, and the worker's memory.

The baseline is the cheapest task the same worker can run: Celery's built-in
``celery.accumulate``, which returns its arguments (none here) and touches nothing. It goes
through the same broker, queue, worker pool, acks_late and result backend as ``events.deliver``,
so the ratio is what the pipeline itself (claim, attempt, handler, outcome, event status) costs
per delivery on top of a bare Celery task. Import only after Django is set up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from celery import states
from django_celery_results.models import TaskResult

from agents_project.celery import app
from events.models import Attempt, Delivery, DeliveryStatus, Event, EventStatus
from events.publish import publish

from .data import DELIVERY_TYPE, bench_source, clean_slate, payload, test_model
from .measure import Comparison, Memory
from .services import BenchError, WorkerProcess, tree_rss_kib

QUEUE = "chaos"
NOOP_TASK = "celery.accumulate"
POLL = 0.02  # seconds between completion checks; small against runs of seconds


@dataclass
class DeliveryResults:
    throughput: Comparison
    worker_memory: Memory
    worker_growth: Memory


def say(message: str) -> None:
    print(f"  {message}", flush=True)


def _wait_for(count: Callable[[], int], n: int, worker: WorkerProcess, what: str) -> None:
    """Poll the database until ``count()`` reaches ``n``; bounded, and fails if the worker died."""
    deadline = time.monotonic() + max(60.0, n * 0.5)
    while count() < n:
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {n} {what}; {count()} done")
        worker.check_alive()
        time.sleep(POLL)


def _noop_results() -> int:
    return TaskResult.objects.filter(task_name=NOOP_TASK, status=states.SUCCESS).count()


def _succeeded_deliveries() -> int:
    return Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count()


def _queue_is_empty(broker: redis.Redis) -> None:
    queued = int(broker.llen(QUEUE))
    if queued:
        raise BenchError(f"{queued} messages are still on the {QUEUE} queue before a run")


def noop_tasks(n: int, worker: WorkerProcess, broker: redis.Redis) -> float:
    """Seconds from sending ``n`` no-op tasks until the last result is stored."""
    clean_slate(broker)
    _queue_is_empty(broker)
    start = time.perf_counter()
    for _ in range(n):
        app.send_task(NOOP_TASK, queue=QUEUE)
    _wait_for(_noop_results, n, worker, "no-op task results")
    return time.perf_counter() - start


def pipeline(n: int, worker: WorkerProcess, broker: redis.Redis, prefix: str) -> float:
    """Seconds from publishing ``n`` events until every delivery has succeeded."""
    source = bench_source()
    clean_slate(broker)
    _queue_is_empty(broker)
    start = time.perf_counter()
    for i in range(n):
        publish(source=source, type=DELIVERY_TYPE, payload=payload(i), external_id=f"{prefix}-{i}")
    _wait_for(_succeeded_deliveries, n, worker, "deliveries to succeed")
    elapsed = time.perf_counter() - start
    _check_final_states(n)
    return elapsed


def _check_final_states(n: int) -> None:
    """Every event processed, every handler run exactly once: a fast wrong answer is no answer."""
    handler_calls = test_model("HandlerCall")._default_manager.count()
    side_effects = test_model("SideEffect")._default_manager.count()
    found = {
        "events processed": Event.objects.filter(status=EventStatus.PROCESSED).count(),
        "deliveries": Delivery.objects.count(),
        "attempts": Attempt.objects.count(),
        "handler calls": handler_calls,
        "side effects": side_effects,
    }
    wrong = {k: v for k, v in found.items() if v != n}
    if wrong:
        raise BenchError(f"after {n} deliveries expected {n} of each, found {wrong}")


def run(
    n: int, repeats: int, broker: redis.Redis, worker: WorkerProcess, idle_kib: int
) -> DeliveryResults:
    throughput = Comparison(
        key="delivery.pipeline",
        title=f"end-to-end delivery through a worker (threads, -c {worker.concurrency})",
        unit="deliveries",
        count=n,
        baseline="no-op task",
        candidate="delivery",
    )
    warm = min(n, 100)
    say(f"warm-up: {warm} of each")
    noop_tasks(warm, worker, broker)
    pipeline(warm, worker, broker, "warm")
    warm_kib = tree_rss_kib(worker.pid)
    processed = warm

    for r in range(repeats):
        if r % 2 == 0:
            b = noop_tasks(n, worker, broker)
            p = pipeline(n, worker, broker, f"d{r}")
        else:
            p = pipeline(n, worker, broker, f"d{r}")
            b = noop_tasks(n, worker, broker)
        processed += n
        throughput.add(b, p)
        say(f"repeat {r + 1}/{repeats}: no-op task {n / b:,.0f}/s, delivery {n / p:,.0f}/s "
            f"({p / b:.2f}x)")  # fmt: skip

    time.sleep(1.0)  # let the pool settle (finished tasks release their buffers)
    after_kib = tree_rss_kib(worker.pid)
    say(f"worker RSS {idle_kib / 1024:.1f} MiB idle after start, {warm_kib / 1024:.1f} MiB "
        f"after warm-up, {after_kib / 1024:.1f} MiB after {processed:,} deliveries")  # fmt: skip
    return DeliveryResults(
        throughput=throughput,
        worker_memory=Memory(
            key="memory.worker",
            title=f"worker RSS after {processed:,} deliveries vs idle after start",
            baseline="idle",
            candidate="after",
            before_kib=idle_kib,
            after_kib=after_kib,
        ),
        worker_growth=Memory(
            key="memory.worker_growth",
            title=f"worker RSS after {processed:,} deliveries vs after the warm-up",
            baseline="warm",
            candidate="after",
            before_kib=warm_kib,
            after_kib=after_kib,
        ),
    )
