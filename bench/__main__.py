"""`python -m bench` (`make bench`): run every benchmark, print ratios, write docs/benchmarks.md.

Order: make a scratch PostgreSQL database and a private redis-server, point this process (and
the worker it starts later) at them through the environment, set Django up on tests.settings
(the project plus the test handlers), migrate, then run the in-process ingest benchmarks and
the worker benchmarks. Everything started is stopped in ``finally``; the scratch database is
dropped at the end unless --keep-db is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from tests.redis_server import RedisServer, ServiceError

from .measure import Result, Sizes, load_targets, verdict
from .report import Machine, console_table, machine_info, write_doc
from .services import (
    ROOT,
    BenchError,
    ScratchDatabase,
    WorkerProcess,
    free_port,
    tree_rss_kib,
)

DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/switchyard"
DOC_PATH = ROOT / "docs" / "benchmarks.md"


FULL = Sizes(ingest=1000, http=500, deliveries=300, repeats=7)
QUICK = Sizes(ingest=100, http=100, deliveries=100, repeats=2)

# The groups --only can pick, in the order they run. "http" is the real-server benchmark
# (bench/http_load.py: the Procfile's web server and a reference receiver under wrk).
GROUPS = ("ingest", "client", "memory", "http", "delivery", "flow", "dispatch", "agents")
# Markdown tables a benchmark adds to docs/benchmarks.md below the results ($details).
DETAILS: list[str] = []


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Switchyard benchmarks: ratios against baselines measured in the same run.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer events and repeats: a smoke run (no write)"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print the results only; leave docs/ alone"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--repeats", type=int, help="measured repeats per benchmark")
    parser.add_argument(
        "--db-name",
        default=os.environ.get("SWITCHYARD_BENCH_DB", "switchyard_bench"),
        help="scratch database, dropped and re-created (must contain 'bench')",
    )
    parser.add_argument("--keep-db", action="store_true", help="leave the scratch database")
    parser.add_argument("--output", type=Path, default=DOC_PATH, help="where to write the report")
    parser.add_argument(
        "--only",
        action="append",
        metavar="GROUP[,GROUP]",
        help=f"run only these groups ({', '.join(GROUPS)}); repeatable. Implies --no-write: "
        "docs/benchmarks.md is written from a whole run only",
    )
    args = parser.parse_args(argv)
    only = [name.strip() for value in args.only or [] for name in value.split(",") if name]
    unknown = sorted(set(only) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    args.groups = [g for g in GROUPS if g in only] if only else list(GROUPS)
    if args.repeats is not None and not 1 <= args.repeats <= 50:
        parser.error("--repeats must be from 1 to 50")
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind through every ``finally`` so the worker, Redis and database are cleaned up.
    raise SystemExit(128 + signum)


def heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


def setup_django(database_url: str, redis_port: int, log_path: Path) -> None:
    """Point Django (and, through the environment, the worker) at the run's own services."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["SWITCHYARD_TEST_REDIS_PORT"] = str(redis_port)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    # DEBUG keeps every SQL query in memory; it would distort both speed and memory.
    os.environ["DEBUG"] = "false"
    # The per-process lookup memo as deployed (5 s), in this process and the workers:
    # tests.settings turns it off for the tests, and every delivery would then read the rows a
    # deployment reads once per memo period (its limits, breakers, an agent's override).
    os.environ.setdefault("SWITCHYARD_TEST_LOOKUP_CACHE_SECONDS", "5")
    import django

    django.setup()
    import logging

    # Pipeline logging stays at its configured level (it is part of the cost), but goes to a
    # file so the terminal shows progress only.
    log_file = log_path.open("a")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[Result], Machine, Sizes]:
    sizes = QUICK if args.quick else FULL
    if args.repeats:
        sizes = Sizes(sizes.ingest, sizes.http, sizes.deliveries, args.repeats)
    server_url = os.environ.get("DATABASE_URL", DEFAULT_SERVER_URL)
    db = ScratchDatabase(server_url, args.db_name)
    redis_server = RedisServer(free_port(), workdir / "redis")
    worker: WorkerProcess | None = None
    created_db = False
    try:
        heading("services")
        print(f"  scratch database {db.display_url} (dropped and re-created)", flush=True)
        db.recreate()
        created_db = True
        redis_server.start()
        print(f"  private redis-server on 127.0.0.1:{redis_server.port}", flush=True)
        setup_django(db.url, redis_server.port, workdir / "bench.log")

        from django.core.management import call_command

        started = time.monotonic()
        call_command("migrate", verbosity=0, interactive=False)
        print(f"  migrated in {time.monotonic() - started:.1f} s", flush=True)

        from . import ingest
        from .data import bench_source, check_routes

        check_routes()
        bench_source()
        machine = machine_info(db, redis_server)
        broker = redis_server.client()
        results: list[Result] = []

        if "ingest" in args.groups:
            heading(f"ingest: publish() vs bare insert, {sizes.ingest:,} events x {sizes.repeats}")
            fresh, dup = ingest.run_publish(broker, sizes.ingest, sizes.repeats)
            results += [fresh, dup]

        if "client" in args.groups:
            heading(
                f"client: POST /hooks vs GET /healthz (test Client), {sizes.http:,} requests "
                f"x {sizes.repeats}"
            )
            results.append(ingest.run_http(broker, sizes.http, sizes.repeats))

        if "memory" in args.groups:
            heading(f"memory: bench process while publishing {sizes.ingest:,} events")
            results.append(ingest.run_memory(broker, sizes.ingest))

        if "http" in args.groups:
            from . import http_load

            # Three by default: the median then survives one turn spoiled by a neighbour's load.
            repeats = args.repeats or (1 if args.quick else 3)
            wrk_s, fixed_s = (4.0, 4.0) if args.quick else (10.0, 8.0)
            heading(
                f"http: GitHub webhooks under wrk, the Procfile's web server vs verify+LPUSH, "
                f"{wrk_s:g} s max + {fixed_s:g} s at 80 % x {repeats}"
            )
            h = http_load.run(
                broker,
                redis_server.url,
                redis_server.process.pid if redis_server.process else None,
                db,
                workdir,
                repeats=repeats,
                wrk_seconds=wrk_s,
                fixed_seconds=fixed_s,
            )
            results += [h.rate, h.p99, h.cpu, h.floor]
            DETAILS.append(h.details)

        if "delivery" in args.groups:
            worker = _delivery_group(sizes, broker, workdir, results)
            worker.stop()
            worker = None

        if "flow" in args.groups:
            from . import flow

            heading(
                "flow: each flow-control mechanism on but holding nothing vs a plain route, "
                f"{sizes.deliveries:,} x {sizes.repeats}"
            )
            rows, table = flow.run_group(sizes, broker, workdir)
            results += rows
            DETAILS.append(table)

        if "dispatch" in args.groups:
            from . import dispatch

            n = 50 if args.quick else 200
            heading(f"dispatch: commit to handler start on an idle worker, {n} x {sizes.repeats}")
            worker = WorkerProcess(
                queues=dispatch.QUEUE,
                log_path=workdir / "dispatch-worker.log",
                pool="threads",
                concurrency=8,
                include="bench.reference_tasks",
            )
            worker.start()
            time.sleep(1.0)
            dr = dispatch.run(n, min(sizes.repeats, 3), broker, worker)
            results += [dr.p50, dr.p99]
            DETAILS.append(dr.details)
            worker.stop()
            worker = None

        if "agents" in args.groups:
            from . import agents

            levels = [(200, 400)] if args.quick else [(50, 500), (200, 2000), (500, 3000)]
            repeats = args.repeats or (1 if args.quick else 3)
            heading(
                "agents: one model call each (stub, 1 s), pipeline vs bare Celery task, "
                f"-c {', '.join(str(c) for c, _ in levels)} x {repeats}"
            )
            runs = agents.run(levels, repeats, broker, workdir)
            for level in runs:
                results.append(level.rate)
                if level.floor is not None:
                    results.append(level.floor)
            DETAILS.append(agents.details(runs))
        return results, machine, sizes
    finally:
        if worker is not None:
            worker.stop()
        redis_server.stop()
        if created_db:
            _close_django_connections()
            if args.keep_db:
                print(f"  kept the scratch database {db.display_url}", flush=True)
            else:
                db.drop()


def _delivery_group(
    sizes: Sizes, broker: Any, workdir: Path, results: list[Result]
) -> WorkerProcess:
    """The delivery benchmarks on their own worker; returns it still running."""
    from . import delivery

    heading(f"delivery: worker end to end vs no-op task, {sizes.deliveries:,} x {sizes.repeats}")
    worker = WorkerProcess(
        queues=delivery.QUEUE,
        log_path=workdir / "worker.log",
        pool="threads",
        concurrency=4,
        include="bench.reference_tasks",
    )
    worker.start()
    time.sleep(1.0)  # let start-up finish (connections, consumers) before the idle reading
    idle_kib = tree_rss_kib(worker.pid)
    print(f"  worker pid {worker.pid} ready, {idle_kib / 1024:.1f} MiB", flush=True)
    try:
        d = delivery.run(sizes.deliveries, sizes.repeats, broker, worker, idle_kib)
    except BaseException:
        worker.stop()
        raise
    results += [d.noop, d.noop_strict, d.throughput, d.worker_memory, d.worker_growth]
    return worker


def _close_django_connections() -> None:
    if "django.conf" not in sys.modules:
        return
    from django.conf import settings

    if settings.configured:
        from django.db import connections

        connections.close_all()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    write = not (args.no_write or args.quick or args.only)
    signal.signal(signal.SIGTERM, _on_sigterm)
    targets = load_targets()
    workdir = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    started = datetime.now(UTC)
    try:
        results, machine, sizes = run(args, workdir)
    except (BenchError, ServiceError) as exc:
        print(f"\nbench: {exc}\n(logs kept in {workdir})", file=sys.stderr, flush=True)
        return 2
    except BaseException:
        print(f"\n(logs kept in {workdir})", file=sys.stderr, flush=True)
        raise
    shutil.rmtree(workdir, ignore_errors=True)

    heading("results (ratio = candidate cost / baseline cost, median of repeats)")
    print(console_table(results, targets), flush=True)
    verdicts = [verdict(r, targets) for r in results]
    misses = verdicts.count("MISS")
    print(f"\n{verdicts.count('PASS')} PASS, {misses} MISS", flush=True)
    if write:
        command = " ".join(["python -m bench", *argv])
        duration = (datetime.now(UTC) - started).total_seconds()
        write_doc(
            args.output,
            results,
            targets,
            machine,
            sizes,
            started,
            command,
            duration,
            details="\n\n".join(DETAILS),
        )
        print(f"wrote {args.output}", flush=True)
    elif args.quick:
        print("(--quick: docs/benchmarks.md left as it is)", flush=True)
    return 1 if args.check and misses else 0


if __name__ == "__main__":
    sys.exit(main())
