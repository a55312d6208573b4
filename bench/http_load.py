"""`python -m bench --only http`: real HTTP servers under wrk, Switchyard against a reference.

Two servers on loopback, started here and measured in the same run, each loaded the same way:

- **Switchyard**: the `web:` line of the Procfile, run as written (same command, same worker
  model and count), on the project's own settings (`agents_project.settings`, DEBUG off), the
  run's scratch PostgreSQL database and private Redis, serving `POST /hooks/<slug>` for a
  `github` source.
- **Reference**: `bench/reference_receiver.py` under `uvicorn --workers 2`: verifies the same
  signature and LPUSHes the body to the same Redis; nothing durable (issue 9's baseline).

The load is GitHub's own `pull_request.opened` payload (tests/webhooks/fixtures, about 28 KB),
signed once with the source's secret, with a unique `X-GitHub-Delivery` on every request
(GitHub's signature covers only the body). Per repeat, for each side (order alternating):

1. wrk, 2 threads, 32 connections, for a fixed time: the maximum rate. The CPU time of the
   server's process tree (utime + stime from /proc, master and workers) is read before and
   after, and divided by the accepted requests.
2. bench/fixed_rate.py at 80 % of that side's own maximum, open loop: p50 and p99 latency,
   each measured from the request's scheduled time.

After each side's turn the run checks that what was answered was kept: Switchyard's events in
the database against its 202 answers (wrk stops with up to one request per connection in
flight, which the server may still complete: at most 32 more events than answers per wrk run;
the fixed-rate runs wait for every answer, so theirs are exact), one delivery per event, and
one broker message per delivery; for the reference, the list's length against its 202s.

The servers' processes and CPU readings are in bench/processes.py; what each run records and
the results made from it, in bench/http_results.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.db import connection

from events.models import Delivery, Event, Route, Source

from .fixed_rate import http_request, run_fixed_rate
from .http_results import LOAD_FRACTION, HttpResults, Side, WrkRun, results
from .processes import Server, database_cpu_seconds, procfile_web_argv, tree_cpu_seconds
from .services import ROOT, BenchError, ScratchDatabase, free_port

PAYLOAD = ROOT / "tests/webhooks/fixtures/github/pull_request/opened.payload.json"
LUA = Path(__file__).with_name("wrk_github.lua")
SLUG = "bench-github"
FLOOR_SLUG = "bench-floor"  # bench/floor_receiver.py's source: its events are counted apart
FLOOR_KEY = "bench:floor"
SECRET = "bench-github-secret"  # noqa: S105 - a scratch database's webhook secret
EVENT_TYPE = "github.pull_request.opened"
THREADS = 2
CONNECTIONS = 32
REFERENCE_KEY = "bench:reference"  # bench/reference_receiver.py's list


def say(message: str) -> None:
    print(f"  {message}", flush=True)


# --- load -------------------------------------------------------------------------------------


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def run_wrk(url: str, body_file: Path, prefix: str, duration_s: float) -> dict[str, object]:
    sig = signature(body_file.read_bytes())
    argv = [
        "wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{duration_s:g}s",
        "--timeout", "10s", "-s", str(LUA), url, "--", str(body_file), sig, prefix,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            return dict(json.loads(line[len("WRK_RESULT ") :]))
    raise BenchError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")


# --- the benchmark ----------------------------------------------------------------------------


def _project_env(db_url: str, redis_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SWITCHYARD_TEST_REDIS_PORT", "DJANGO_SETTINGS_MODULE"}
    }
    bindir = str(Path(sys.executable).parent)
    env.update(
        {
            "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}",
            "DJANGO_SETTINGS_MODULE": "agents_project.settings",
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "DEBUG": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def github_source(slug: str = SLUG) -> Source:
    source, _ = Source.objects.update_or_create(
        slug=slug, defaults={"kind": "github", "secrets": [SECRET], "settings": {}}
    )
    return source


def _queues() -> list[str]:
    return sorted(
        set(
            Route.objects.filter(enabled=True, handler="github.pr_review").values_list(
                "queue", flat=True
            )
        )
    )


def _check_durable(
    broker: redis.Redis, answered: int, slack: int, queues: list[str], slug: str
) -> tuple[int, int]:
    """Every 202 a committed event with one delivery, and one broker message per delivery."""
    events = Event.objects.filter(source__slug=slug).count()
    deliveries = Delivery.objects.filter(event__source__slug=slug).count()
    messages = sum(int(broker.llen(q)) for q in queues)
    if not answered <= events <= answered + slack:
        raise BenchError(
            f"{slug} answered 202 {answered} times but stored {events} events "
            f"(expected {answered} to {answered + slack})"
        )
    if deliveries != events or messages != deliveries:
        raise BenchError(
            f"{events} events, {deliveries} deliveries, {messages} broker messages on "
            f"{', '.join(queues)}: expected one delivery per event and one message per delivery"
        )
    return events, messages


def _clean_switchyard(broker: redis.Redis, queues: list[str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Event._meta.db_table}, {Delivery._meta.db_table} CASCADE")
    if queues:
        broker.delete(*queues)


def _check_reference(broker: redis.Redis, answered: int, slack: int) -> int:
    queued = int(broker.llen(REFERENCE_KEY))
    if not answered <= queued <= answered + slack:
        raise BenchError(
            f"the reference answered 202 {answered} times but holds {queued} bodies "
            f"(expected {answered} to {answered + slack})"
        )
    broker.delete(REFERENCE_KEY)
    return queued


def run(
    broker: redis.Redis,
    redis_url: str,
    redis_pid: int | None,
    db: ScratchDatabase,
    workdir: Path,
    *,
    repeats: int,
    wrk_seconds: float,
    fixed_seconds: float,
) -> HttpResults:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (make bench installs it: apt-get install wrk)")
    github_source()
    github_source(FLOOR_SLUG)
    queues = _queues()
    if not queues:
        raise BenchError(f"no enabled route of github.pr_review takes {EVENT_TYPE}")
    body = PAYLOAD.read_bytes()
    body_file = workdir / "pull_request.opened.json"
    body_file.write_bytes(body)

    env = _project_env(db.url, redis_url)
    port = free_port()
    web = Server("switchyard web", procfile_web_argv(port), env, workdir / "web.log")
    ref_env = {
        **env,
        "BENCH_REFERENCE_SECRET": SECRET,
        "BENCH_REFERENCE_REDIS_URL": redis_url,
    }
    ref_port = free_port()
    ref_argv = [
        sys.executable, "-m", "uvicorn", "bench.reference_receiver:app",
        "--host", "127.0.0.1", "--port", str(ref_port), "--workers", "2",
    ]  # fmt: skip
    reference = Server("reference receiver", ref_argv, ref_env, workdir / "reference.log")
    floor_port = free_port()
    floor_env = {
        **env,
        "BENCH_FLOOR_SECRET": SECRET,
        "BENCH_FLOOR_REDIS_URL": redis_url,
        "BENCH_FLOOR_DATABASE_URL": db.url,
        "BENCH_FLOOR_SLUG": FLOOR_SLUG,
        "BENCH_FLOOR_HANDLER": "github.pr_review",
    }
    floor_argv = [
        sys.executable, "-m", "uvicorn", "bench.floor_receiver:app",
        "--host", "127.0.0.1", "--port", str(floor_port), "--workers", "2",
    ]  # fmt: skip
    floor = Server("floor receiver", floor_argv, floor_env, workdir / "floor.log")
    say(f"switchyard: {' '.join(web.argv)}")
    say(f"reference:  {' '.join(reference.argv[1:])}")
    say(f"floor:      {' '.join(floor.argv[1:])}")
    sides = {
        "switchyard": Side("switchyard", web, f"/hooks/{SLUG}"),
        "reference": Side("reference", reference, "/"),
        "floor": Side("floor", floor, "/"),
    }
    try:
        web.start(port)
        reference.start(ref_port)
        floor.start(floor_port)
        for side in sides.values():  # warm-up: imports, connections, first queries
            run_wrk(f"http://127.0.0.1:{side.server.port}{side.url_path}", body_file, "warm", 2)
        # wrk stops with requests in flight that the servers still finish: let them land
        # before the slate is cleaned, or they would be counted against the first turn.
        time.sleep(3.0)
        _clean_switchyard(broker, queues)
        broker.delete(REFERENCE_KEY, FLOOR_KEY)

        for r in range(repeats):
            order = ["reference", "floor", "switchyard"]
            if r % 2 == 1:
                order.reverse()
            for name in order:
                _one_turn(sides[name], r, body, body_file, broker, queues, redis_pid, db,
                          wrk_seconds, fixed_seconds)  # fmt: skip
    finally:
        web.stop()
        reference.stop()
        floor.stop()
    return results(sides["reference"], sides["switchyard"], sides["floor"])


def _one_turn(
    side: Side,
    r: int,
    body: bytes,
    body_file: Path,
    broker: redis.Redis,
    queues: list[str],
    redis_pid: int | None,
    db: ScratchDatabase,
    wrk_seconds: float,
    fixed_seconds: float,
) -> None:
    server = side.server
    url = f"http://127.0.0.1:{server.port}{side.url_path}"
    prefix = f"{side.name[0]}{r}-{secrets.token_hex(3)}"

    cpu0, db0 = server.cpu_seconds(), database_cpu_seconds(db.name)
    redis0 = tree_cpu_seconds(redis_pid) if redis_pid else 0.0
    raw = run_wrk(url, body_file, prefix, wrk_seconds)
    cpu1, db1 = server.cpu_seconds(), database_cpu_seconds(db.name)
    redis1 = tree_cpu_seconds(redis_pid) if redis_pid else 0.0
    latency = dict(raw["latency_us"])  # type: ignore[call-overload]
    run = WrkRun(
        duration_s=int(raw["duration_us"]) / 1e6,  # type: ignore[call-overload]
        requests=int(raw["requests"]),  # type: ignore[call-overload]
        statuses=dict(raw["statuses"]),  # type: ignore[call-overload]
        errors=dict(raw["errors"]),  # type: ignore[call-overload]
        p50_ms=latency["p50"] / 1000,
        p99_ms=latency["p99"] / 1000,
        cpu_s=cpu1 - cpu0,
        db_cpu_s=db1 - db0,
        redis_cpu_s=redis1 - redis0,
        load=os.getloadavg()[0],
    )
    side.wrk.append(run)
    say(
        f"{side.name:<10} wrk: {run.rate:,.0f} req/s, p50 {run.p50_ms:.0f} ms, p99 "
        f"{run.p99_ms:.0f} ms, statuses {run.statuses}, errors {run.errors}, "
        f"{1000 * run.cpu_s / max(run.accepted, 1):.2f} CPU ms/webhook (+ PostgreSQL "
        f"{1000 * run.db_cpu_s / max(run.accepted, 1):.2f}, Redis "
        f"{1000 * run.redis_cpu_s / max(run.accepted, 1):.2f}), load {run.load:.1f}"
    )

    rate = max(1.0, LOAD_FRACTION * run.rate)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/bench",
        "X-GitHub-Event": "pull_request",
        "X-Hub-Signature-256": signature(body),
    }
    head_host = f"127.0.0.1:{server.port}"

    def make_request(i: int) -> bytes:
        return http_request(
            "POST",
            side.url_path,
            head_host,
            {**headers, "X-GitHub-Delivery": f"{prefix}-fixed-{i}"},
            body,
        )

    fixed = run_fixed_rate(
        "127.0.0.1",
        server.port,
        make_request,
        rate=rate,
        duration_s=fixed_seconds,
        connections=CONNECTIONS,
    )
    side.fixed.append(fixed)
    say(
        f"{side.name:<10} fixed {rate:,.0f} req/s ({LOAD_FRACTION:.0%} of its max): p50 "
        f"{fixed.percentile(50):.1f} ms, p99 {fixed.percentile(99):.1f} ms, statuses "
        f"{dict(fixed.statuses)}, errors {fixed.errors}"
    )

    answered = run.accepted + fixed.statuses.get(202, 0)
    if side.name in ("switchyard", "floor"):
        slug, keys = (SLUG, queues) if side.name == "switchyard" else (FLOOR_SLUG, [FLOOR_KEY])
        events, messages = _check_durable(broker, answered, CONNECTIONS, keys, slug)
        say(f"{'':<10} checked: {answered} answered 202, {events} events committed, "
            f"{messages} deliveries sent to the broker")  # fmt: skip
        _clean_switchyard(broker, keys)
    else:
        queued = _check_reference(broker, answered, CONNECTIONS)
        say(f"{'':<10} checked: {answered} answered 202, {queued} bodies in Redis")
