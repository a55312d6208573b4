"""Delivery throughput through a real `celery worker`, and the worker's memory.

The baseline is the cheapest task the same worker can run: Celery's built-in
``celery.accumulate``, which returns its arguments (none here) and touches nothing. It goes
through the same broker, queue, worker pool, acks_late and result backend as ``events.deliver``,
so the ratio is what the pipeline itself (claim, attempt, handler, outcome, event status) costs
per delivery on top of a bare Celery task. Import only after Django is set up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from celery import states
from django.db import transaction
from django_celery_results.models import TaskResult

from agents_project.celery import app
from events.models import Attempt, Delivery, DeliveryStatus, Event, EventStatus
from events.publish import publish

from .data import DELIVERY_TYPE, NOOP_TYPE, bench_source, clean_slate, payload, test_model
from .measure import Comparison, Memory
from .reference_tasks import NOOP_DONE_KEY
from .services import BenchError, WorkerProcess, tree_rss_kib, wait_for_count

QUEUE = "chaos"
NOOP_TASK = "celery.accumulate"


@dataclass
class DeliveryResults:
    throughput: Comparison
    noop: Comparison
    noop_strict: Comparison
    worker_memory: Memory
    worker_growth: Memory


def say(message: str) -> None:
    print(f"  {message}", flush=True)


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
    wait_for_count(_noop_results, n, worker, "no-op task results")
    return time.perf_counter() - start


def bare_noops(n: int, worker: WorkerProcess, broker: redis.Redis) -> float:
    """Seconds for ``n`` no-op tasks that store no result (``bench.bare_noop``)."""
    clean_slate(broker)
    _queue_is_empty(broker)
    broker.delete(NOOP_DONE_KEY)
    start = time.perf_counter()
    for _ in range(n):
        app.send_task("bench.bare_noop", queue=QUEUE)
    wait_for_count(lambda: int(broker.get(NOOP_DONE_KEY) or 0), n, worker, "bare no-op tasks")
    return time.perf_counter() - start


def pipeline(
    n: int, worker: WorkerProcess, broker: redis.Redis, prefix: str, type: str = DELIVERY_TYPE
) -> float:
    """Seconds from the commit of ``n`` events until every delivery has succeeded.

    The events are published in one transaction and the clock starts at its commit, when
    publish() sends the messages: the same start as the baseline's first send, so what is
    timed is delivery, not this process publishing one event at a time.
    """
    source = bench_source()
    clean_slate(broker)
    _queue_is_empty(broker)
    committed: list[float] = []
    with transaction.atomic():
        # Registered first: it runs at the commit, before publish()'s callbacks send.
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        for i in range(n):
            publish(source=source, type=type, payload=payload(i), external_id=f"{prefix}-{i}")
    wait_for_count(_succeeded_deliveries, n, worker, "deliveries to succeed")
    elapsed = time.perf_counter() - committed[0]
    _check_final_states(n, with_effects=type == DELIVERY_TYPE)
    return elapsed


def _check_final_states(n: int, *, with_effects: bool = True) -> None:
    """Every event processed, every handler run exactly once: a fast wrong answer is no answer."""
    found = {
        "events processed": Event.objects.filter(status=EventStatus.PROCESSED).count(),
        "deliveries": Delivery.objects.count(),
        "attempts": Attempt.objects.count(),
    }
    if with_effects:
        found["handler calls"] = test_model("HandlerCall")._default_manager.count()
        found["side effects"] = test_model("SideEffect")._default_manager.count()
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
    noop = Comparison(
        key="delivery.noop",
        title=f"a no-op handler through the pipeline (threads, -c {worker.concurrency})",
        unit="deliveries",
        count=n,
        baseline="no-op task",
        candidate="no-op handler",
    )
    strict = Comparison(
        key="delivery.noop_no_result",
        title=f"a no-op handler vs a no-op task that stores no result (-c {worker.concurrency})",
        unit="deliveries",
        count=n,
        baseline="no-op task, no result",
        candidate="no-op handler",
    )
    warm = min(n, 100)
    say(f"warm-up: {warm} of each")
    bare_noops(warm, worker, broker)
    noop_tasks(warm, worker, broker)
    pipeline(warm, worker, broker, "warm")
    pipeline(warm, worker, broker, "warm-noop", NOOP_TYPE)
    warm_kib = tree_rss_kib(worker.pid)
    processed = 2 * warm

    for r in range(repeats):
        # Alternate the order, so neither side always runs on a warmer (or busier) machine.
        if r % 2 == 0:
            b = noop_tasks(n, worker, broker)
            s = bare_noops(n, worker, broker)
            p = pipeline(n, worker, broker, f"d{r}")
            q = pipeline(n, worker, broker, f"n{r}", NOOP_TYPE)
        else:
            q = pipeline(n, worker, broker, f"n{r}", NOOP_TYPE)
            p = pipeline(n, worker, broker, f"d{r}")
            s = bare_noops(n, worker, broker)
            b = noop_tasks(n, worker, broker)
        processed += 2 * n
        throughput.add(b, p)
        noop.add(b, q)
        strict.add(s, q)
        say(f"repeat {r + 1}/{repeats}: no-op task {n / b:,.0f}/s (no result: {n / s:,.0f}/s), "
            f"no-op handler {n / q:,.0f}/s ({q / b:.2f}x; {q / s:.2f}x), "
            f"test.chaos {n / p:,.0f}/s ({p / b:.2f}x)")  # fmt: skip

    time.sleep(1.0)  # let the pool settle (finished tasks release their buffers)
    after_kib = tree_rss_kib(worker.pid)
    say(f"worker RSS {idle_kib / 1024:.1f} MiB idle after start, {warm_kib / 1024:.1f} MiB "
        f"after warm-up, {after_kib / 1024:.1f} MiB after {processed:,} deliveries")  # fmt: skip
    return DeliveryResults(
        throughput=throughput,
        noop=noop,
        noop_strict=strict,
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
