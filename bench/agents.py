"""Agents at the model's speed: the pipeline against a bare Celery task, same worker, same stub.

One `celery worker -P threads -c C` (the Procfile's command, with ``WORKER_CONCURRENCY=C``, on
the project's default settings) runs both sides against ``bench.stub_model``, a Messages API
stand-in answering every request after a fixed delay:

- **candidate**: N events of type ``test.agent.wait``, routed to ``test.waiting_agent``, an
  ``Agent`` making one Messages API call through the real ``anthropic`` SDK; each delivery goes
  the whole way (claim, attempt, the agent's budget check, model override and step, outcome,
  event status). Timed from the commit that enqueues the N messages until the database shows
  N deliveries succeeded; then checked: every event processed, one attempt each, no retries, no
  dead letters, exactly N model calls.
- **baseline**: N ``bench.bare_agent_call`` tasks (bench/reference_tasks.py) making the same
  SDK call and nothing else, timed from the first send until N have counted themselves done.
- **floor**: N ``bench.floor_agent_call`` tasks, each claiming one of N pending deliveries made
  beforehand, making the same SDK call and recording the outcome: the least a durable delivery
  must do (one claim statement, one outcome statement, plain SQL). Timed from the first send
  until the database shows N deliveries succeeded. If the floor misses a target, no
  implementation of the guarantees meets it on this machine.

During each candidate run the benchmark samples ``pg_stat_activity`` for the worker's
connections (its ``application_name``) and reports the peak against the pool's size.
``BENCH_AGENTS_POOL`` names another Celery pool for the worker (default ``threads``, the
Procfile's), for trying one side by side; ``BENCH_AGENTS_PROCESSES=K`` shares each level's
concurrency among K worker processes (both sides alike), for the sizing guide.

Import only after Django is set up.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection, transaction

from agents_project.celery import app
from events.models import Attempt, Delivery, DeliveryStatus, Event, EventStatus, Route
from events.publish import publish
from handlers.models import Step

from .data import bench_source, clean_slate
from .measure import Measured
from .processes import database_cpu_by_backend, tree_cpu_seconds
from .reference_tasks import DONE_KEY
from .services import ROOT, BenchError, WorkerProcess, free_port, wait_for_count, wait_until

AGENT_TYPE = "test.agent.wait"
AGENT_QUEUE = "agents-wait"
MODEL_DELAY = 1.0  # seconds the stub makes every model call wait
WORKER_APP_NAME = "switchyard-bench-worker"
# BENCH_AGENTS_PROCESSES=K: the concurrency shared by K worker processes (-c C/K each), both
# sides alike, for the sizing guide's "add processes, not threads"; the rows say so.
PROCESSES = int(os.environ.get("BENCH_AGENTS_PROCESSES", "1"))


def _workers(concurrency: int) -> str:
    pool = os.environ.get("BENCH_AGENTS_POOL", "threads")
    if PROCESSES == 1:
        return f"one worker -P {pool} -c {concurrency}"
    return f"{PROCESSES} worker processes -P {pool} -c {concurrency // PROCESSES} each"


def say(message: str) -> None:
    print(f"  {message}", flush=True)


class StubModel:
    """``python -m bench.stub_model`` as a subprocess on a free loopback port."""

    def __init__(self, log_path: Path, delay: float = MODEL_DELAY) -> None:
        self.port = free_port()
        self.delay = delay
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.stub_model", "--port", str(self.port),
                 "--delay", str(self.delay)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_until(self._answers, timeout=20, interval=0.1, what="the stub model")

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"the stub model exited: {self.log_path.read_text()[-2000:]}")
        try:
            self.stats()
        except OSError:
            return False
        return True

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as answer:  # noqa: S310
            return dict(json.loads(answer.read()))

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@dataclass
class AgentRun:
    """One concurrency level: the rates, and per side the worker's CPU per event; for the
    pipeline the database's CPU per event and the worker's peak PostgreSQL connections."""

    concurrency: int
    events: int
    rate: Measured
    pool_max: int = 0
    peak_connections: list[int] = field(default_factory=list)
    bare_cpu_ms: list[float] = field(default_factory=list)
    floor: Measured | None = None
    floor_cpu_ms: list[float] = field(default_factory=list)
    floor_db_cpu_ms: list[float] = field(default_factory=list)
    pipeline_cpu_ms: list[float] = field(default_factory=list)
    db_cpu_ms: list[float] = field(default_factory=list)


def database_cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU the backends used between two readings. A backend that exited in between is not
    counted (its last figures are gone), so this is a lower bound."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


class ConnectionSampler:
    """Polls pg_stat_activity for the worker's connections while a run goes on."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        db = settings.DATABASES["default"]
        with psycopg.connect(
            host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or None,
            dbname=db["NAME"], autocommit=True,
        ) as conn:  # fmt: skip
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    (WORKER_APP_NAME,),
                ).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)
                self._stop.wait(self.interval)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def worker_env(stub: StubModel) -> dict[str, str]:
    """What the worker gets on top of this process's environment: the stub as the API, and a
    name on its database connections so pg_stat_activity can tell them apart."""
    separator = "&" if "?" in os.environ["DATABASE_URL"] else "?"
    return {
        "ANTHROPIC_BASE_URL": stub.url,
        "ANTHROPIC_API_KEY": "sk-ant-bench-not-a-key",
        "SWITCHYARD_AGENT_PROVIDER": "anthropic",
        "DATABASE_URL": f"{os.environ['DATABASE_URL']}{separator}"
        f"application_name={WORKER_APP_NAME}",
    }


def bare(n: int, worker: WorkerProcess, broker: redis.Redis) -> float:
    broker.delete(DONE_KEY)
    start = time.perf_counter()
    for i in range(n):
        app.send_task("bench.bare_agent_call", args=(i,), queue=AGENT_QUEUE)
    wait_for_count(lambda: int(broker.get(DONE_KEY) or 0), n, worker, "bare agent calls", least=120)
    return time.perf_counter() - start


def floor(n: int, worker: WorkerProcess, broker: redis.Redis, stub: StubModel, tag: str) -> float:
    """Seconds from the first send of ``n`` floor tasks until their deliveries have succeeded."""
    clean_slate(broker, queues=(AGENT_QUEUE,))
    source = bench_source()
    route = Route.objects.get(handler="test.waiting_agent")
    with transaction.atomic():
        events = Event.objects.bulk_create(
            Event(source=source, type=AGENT_TYPE, payload={"n": i}, external_id=f"{tag}-{i}")
            for i in range(n)
        )
        deliveries = Delivery.objects.bulk_create(
            Delivery(event=event, route=route, handler=route.handler) for event in events
        )
    answered = stub.stats()["answered"]
    start = time.perf_counter()
    for delivery in deliveries:
        app.send_task("bench.floor_agent_call", args=(delivery.pk,), queue=AGENT_QUEUE)
    wait_for_count(_succeeded, n, worker, "floor deliveries to succeed", least=120)
    elapsed = time.perf_counter() - start
    found = {
        "events processed": Event.objects.filter(status=EventStatus.PROCESSED).count(),
        "model calls": stub.stats()["answered"] - answered,
    }
    if any(v != n for v in found.values()):
        raise BenchError(f"after {n} floor deliveries expected {n} of each, found {found}")
    connection.close()
    return elapsed


def _succeeded() -> int:
    return Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count()


def pipeline(
    n: int, worker: WorkerProcess, broker: redis.Redis, stub: StubModel, tag: str
) -> float:
    """Seconds from the commit that enqueues ``n`` agent events until all have succeeded."""
    clean_slate(broker, queues=(AGENT_QUEUE,))
    source = bench_source()
    answered = stub.stats()["answered"]
    committed: list[float] = []
    with transaction.atomic():
        # Registered first, so it runs at the commit, before publish()'s callbacks send the
        # messages: the clock starts when the events exist, as the bare side's does at its
        # first send.
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        for i in range(n):
            publish(source=source, type=AGENT_TYPE, payload={"n": i}, external_id=f"{tag}-{i}")
    wait_for_count(_succeeded, n, worker, "agent deliveries to succeed", least=120)
    elapsed = time.perf_counter() - committed[0]
    calls = stub.stats()["answered"] - answered
    _check(n, calls)
    return elapsed


def _check(n: int, model_calls: int) -> None:
    """Every event processed once, no retries, no dead letters, one model call each."""
    found = {
        "events processed": Event.objects.filter(status=EventStatus.PROCESSED).count(),
        "deliveries succeeded": _succeeded(),
        "attempts": Attempt.objects.count(),
        "first attempts": Attempt.objects.filter(number=1).count(),
        "llm steps": Step.objects.count(),
        "model calls": model_calls,
    }
    wrong = {k: v for k, v in found.items() if v != n}
    if wrong:
        raise BenchError(f"after {n} agent events expected {n} of each, found {wrong}")
    connection.close()


def run(
    levels: list[tuple[int, int]], repeats: int, broker: redis.Redis, workdir: Path
) -> list[AgentRun]:
    """``levels``: (concurrency, events per run) pairs; a fresh worker for each level."""
    stub = StubModel(workdir / "stub-model.log")
    stub.start()
    say(f"stub model on {stub.url}, answering after {stub.delay} s")
    db_name = str(settings.DATABASES["default"]["NAME"])
    pool = settings.DATABASES["default"]["OPTIONS"].get("pool") or {}
    # Each worker process has a pool of its own.
    pool_max = (int(pool.get("max_size", 0)) if isinstance(pool, dict) else 0) * PROCESSES
    runs: list[AgentRun] = []
    try:
        for concurrency, n in levels:
            worker = WorkerProcess(
                queues=AGENT_QUEUE,
                log_path=workdir / f"agents-worker-c{concurrency}.log",
                pool=os.environ.get("BENCH_AGENTS_POOL", "threads"),
                concurrency=concurrency,
                env=worker_env(stub),
                include="bench.reference_tasks",
                processes=PROCESSES,
            )
            worker.start()
            rate = Measured(
                key=f"agents.c{concurrency}",
                title=f"agent events (one model call, 1 s) on {_workers(concurrency)}, events/s",
                unit="events/s",
                baseline="bare Celery task",
                candidate="pipeline",
                higher_is_better=True,
            )
            floor_rate = Measured(
                key=f"agents.floor_c{concurrency}",
                title=f"the floor of a durable agent delivery (claim, call, outcome; two plain "
                f"SQL statements, bench.floor_agent_call) at -c {concurrency}, events/s",
                unit="events/s",
                baseline="bare Celery task",
                candidate="floor",
                higher_is_better=True,
            )
            level = AgentRun(concurrency, n, rate, floor=floor_rate, pool_max=pool_max)
            try:
                warm = min(n, concurrency)
                bare(warm, worker, broker)
                pipeline(warm, worker, broker, stub, f"warm{concurrency}")
                floor(warm, worker, broker, stub, f"floorwarm{concurrency}")
                for r in range(repeats):
                    cpu0, db0 = tree_cpu_seconds(worker.pid), database_cpu_by_backend(db_name)
                    with ConnectionSampler() as sampler:
                        p = pipeline(n, worker, broker, stub, f"c{concurrency}r{r}")
                    cpu1, db1 = tree_cpu_seconds(worker.pid), database_cpu_by_backend(db_name)
                    b = bare(n, worker, broker)
                    cpu2, db2 = tree_cpu_seconds(worker.pid), database_cpu_by_backend(db_name)
                    f = floor(n, worker, broker, stub, f"floor{concurrency}r{r}")
                    cpu3, db3 = tree_cpu_seconds(worker.pid), database_cpu_by_backend(db_name)
                    floor_rate.add(n / b, n / f)
                    level.floor_cpu_ms.append((cpu3 - cpu2) * 1000 / n)
                    level.floor_db_cpu_ms.append(database_cpu_between(db2, db3) * 1000 / n)
                    rate.add(n / b, n / p)
                    level.peak_connections.append(sampler.peak)
                    level.pipeline_cpu_ms.append((cpu1 - cpu0) * 1000 / n)
                    level.bare_cpu_ms.append((cpu2 - cpu1) * 1000 / n)
                    level.db_cpu_ms.append(database_cpu_between(db0, db1) * 1000 / n)
                    say(
                        f"-c {concurrency} repeat {r + 1}/{repeats}: bare {n / b:,.0f}/s "
                        f"({level.bare_cpu_ms[-1]:.1f} worker CPU ms/event), pipeline "
                        f"{n / p:,.0f}/s ({level.pipeline_cpu_ms[-1]:.1f} worker + "
                        f"{level.db_cpu_ms[-1]:.1f} PostgreSQL CPU ms/event), {b / p:.2f}x "
                        f"the bare rate; floor {n / f:,.0f}/s ({level.floor_cpu_ms[-1]:.1f} + "
                        f"{level.floor_db_cpu_ms[-1]:.1f} CPU ms/event), {b / f:.2f}x; "
                        f"peak {sampler.peak} PostgreSQL connections "
                        f"(pool max {pool_max})"
                    )
            finally:
                worker.stop()
            runs.append(level)
    finally:
        stub.stop()
    return runs


def floor_cells(level: AgentRun) -> str:
    if level.floor is None or not level.floor.candidate_values:
        return "- | - | -"
    m = statistics.median
    return (
        f"{m(level.floor.candidate_values):,.0f} | {1 / level.floor.ratio:.2f}x | "
        f"{m(level.floor_cpu_ms):.1f} + {m(level.floor_db_cpu_ms):.1f}"
    )


def details(runs: list[AgentRun]) -> str:
    """The curve over concurrency, for docs/benchmarks.md."""
    rows = []
    for level in runs:
        m = statistics.median
        rows.append(
            f"| {level.concurrency} | {level.events:,} | "
            f"{m(level.rate.baseline_values):,.0f} | {m(level.rate.candidate_values):,.0f} | "
            f"{1 / level.rate.ratio:.2f}x | {m(level.bare_cpu_ms):.1f} | "
            f"{m(level.pipeline_cpu_ms):.1f} | {m(level.db_cpu_ms):.1f} | "
            f"{max(level.peak_connections)} of {level.pool_max} | {floor_cells(level)} |"
        )
    return "\n".join(
        [
            "**Agents over concurrency** (medians of the repeats; the stub answers every model "
            "call after 1 s, so c events/s is the ceiling at concurrency c; CPU is the worker "
            "process's utime + stime, and PostgreSQL's backends serving the run, per event; "
            "the floor is `bench.floor_agent_call`, the least a durable delivery does):",
            "",
            "| -c | Events | Bare task /s | Pipeline /s | Pipeline / bare | Bare worker CPU "
            "ms/event | Pipeline worker CPU ms/event | PostgreSQL CPU ms/event | Peak "
            "connections | Floor /s | Floor / bare | Floor worker + PostgreSQL CPU ms/event |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
