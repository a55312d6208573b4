"""What each flow-control mechanism of issue 14 costs a delivery when it is on but holds nothing.

Every row is a pair measured back to back on one real worker (threads, -c 4): N deliveries of
``test.noop`` on its own route, where nothing is configured, against N deliveries on a route
with one mechanism on (a rate limit that never defers, a closed circuit breaker, a concurrency
cap never reached, order per key with a key per event, ``ctx.state``, a fan-out cap). So the
ratio, and the extra milliseconds per delivery beside it, are the price every delivery pays for
a mechanism being configured, not the effect of what it holds back. Each pair's order
alternates from row to row and repeat to repeat, and every run checks that each delivery
succeeded exactly once and (except where holding is the point) was never held.

Rate limits and breakers have a switch for the whole process (``events.limits.any_limits``,
``events.breakers.any_breakers``): while none is configured anywhere, a delivery does not even
read its own row for them. So those are turned on only around their own candidate run, and the
baseline runs with nothing configured anywhere. The worker reads them through the lookup memo
(events/lookups.py), which tests.settings turns off unless ``SWITCHYARD_TEST_LOOKUP_CACHE_SECONDS``
says otherwise: off, every delivery would read the rows a deployment reads once per memo period.
The worker keeps them 1 s and each switch waits out that second, so a run never sees the
previous one's configuration. Import only after Django is set up.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from django.db import transaction
from django.test import override_settings

from events import breakers, limits
from events.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    HandlerState,
    Resource,
    Route,
)
from events.publish import publish
from events.routing import matching_routes

from . import flow_counts
from .data import NOOP_TYPE, bench_source, clean_slate, payload
from .delivery import QUEUE, say
from .flow_counts import Trips
from .measure import Comparison, Sizes
from .services import BenchError, WorkerProcess, wait_for_count

# The worker's lookup memo, and how long a switch waits for it to lapse.
MEMO_SECONDS = 1.0
SWITCH_WAIT = MEMO_SECONDS + 0.3
RESOURCE = "bench-flow"
# A rate no run comes near, with a bucket that holds a whole run: never a deferral.
NEVER_DEFERS = {"rate_limit": 100_000.0, "rate_burst": 100_000}
FEW_KEYS = 4


@dataclass(frozen=True)
class Case:
    """One row: the candidate's event type (its own route, made by ``setup``), how its events
    are keyed and what their payload adds, and which global switch it needs on."""

    key: str
    title: str
    candidate: str
    type: str
    route: dict[str, Any] = field(default_factory=dict)
    handler: str = "test.noop"
    keys: int | None = None  # None: no partition key; 0: one per event; k: k keys in turn
    extra: dict[str, Any] = field(default_factory=dict)  # added to each payload ("count": 1)
    switch: str = ""  # "rate" or "breaker": on only for the candidate run
    baseline_type: str = NOOP_TYPE
    baseline: str = "plain route"
    may_hold: bool = False  # deliveries may be held (deferred) on the way: the point of the row

    def payload(self, i: int, prefix: str) -> dict[str, Any]:
        body = {**payload(i), **self.extra}
        if self.handler == "test.state.put":
            body["value"] = prefix  # a new value each run: every delivery writes its state
        return body

    def partition_key(self, i: int) -> str | None:
        if self.keys is None:
            return None
        return f"k{i % self.keys if self.keys else i}"


CASES = [
    Case("flow.rate_limit", "a route rate limit that never defers (100,000/s, burst 100,000)",
         "rate limit", "bench.flow.rate", switch="rate"),
    Case("flow.rate_limit_elsewhere", "a plain route while another route has a rate limit",
         "limit elsewhere", NOOP_TYPE, switch="rate"),
    Case("flow.breaker", "a closed circuit breaker on a resource the route names",
         "breaker closed", "bench.flow.breaker", route={"resources": [RESOURCE]}, switch="breaker"),
    Case("flow.concurrency", "a concurrency cap never reached (max_concurrency 1,000)",
         "capped route", "bench.flow.capped", route={"max_concurrency": 1000}),
    Case("flow.ordered", "order per partition key, a key per event (nothing to wait for)",
         "ordered, own keys", "bench.flow.ordered", route={"ordered_by_key": True}, keys=0),
    Case("flow.ordered_few_keys",
         f"order per partition key over {FEW_KEYS} keys: it serialises (deliveries are held)",
         f"ordered, {FEW_KEYS} keys", "bench.flow.ordered", route={"ordered_by_key": True},
         keys=FEW_KEYS, may_hold=True),
    Case("flow.state", "a handler that reads and writes ctx.state (test.state.put, a key each)",
         "ctx.state", "bench.flow.state", handler="test.state.put", keys=0),
    Case("flow.emit", "a handler emitting one follow-up (test.burster), route cap max_emits 1",
         "emits 1, cap 1", "bench.flow.emit_capped", route={"max_emits": 1},
         handler="test.burster", extra={"count": 1}),
    Case("flow.fanout_cap", "the route's fan-out cap (max_emits 1) vs none, both emitting one",
         "emits 1, cap 1", "bench.flow.emit_capped", route={"max_emits": 1},
         handler="test.burster", extra={"count": 1}, baseline_type="bench.flow.emit",
         baseline="emits 1, no route cap"),
]  # fmt: skip
# The fan-out row's baseline: the same handler on a route without a cap of its own.
UNCAPPED = Case("uncapped", "", "", "bench.flow.emit", handler="test.burster", extra={"count": 1})
PLAIN = Case("plain", "", "", NOOP_TYPE)


def setup() -> None:
    """The candidates' routes (all to the worker's queue) and the breaker's resource, and a
    check that nothing else is configured: the baseline must be a route with nothing on."""
    for case in [*CASES, UNCAPPED]:
        if case.type == NOOP_TYPE:
            continue
        Route.objects.update_or_create(
            name=case.type,
            defaults={"event_type": case.type, "handler": case.handler, "queue": QUEUE,
                      "max_attempts": 1, **case.route},
        )  # fmt: skip
    Resource.objects.update_or_create(name=RESOURCE, defaults={"breaker_enabled": False})
    configured = Route.objects.exclude(max_concurrency=None) | Route.objects.filter(
        ordered_by_key=True
    )
    unexpected = sorted(set(configured.values_list("name", flat=True)) - {c.type for c in CASES})
    if unexpected or _any_limits() or _any_breakers():
        raise BenchError(f"flow control configured outside the bench routes: {unexpected}")
    source = bench_source()
    for type_ in [NOOP_TYPE, "test.fanout.item"]:
        found = [r.name for r in matching_routes(type_, {}, source=source)]
        if found != ([] if type_ == "test.fanout.item" else ["test.noop <- test.noop"]):
            raise BenchError(f"{type_} should match only the expected route; matched {found}")


def _any_limits() -> bool:
    return (
        Route.objects.exclude(rate_limit=None).exists()
        or Resource.objects.exclude(rate=None).exists()
    )


def _any_breakers() -> bool:
    return Resource.objects.filter(breaker_enabled=True).exists()


def switch(name: str, on: bool, *, wait: bool = True) -> None:
    """Turn the rate limit or the breaker on or off, then wait until the worker sees it."""
    if not name:
        return
    if name == "rate":
        fields = NEVER_DEFERS if on else {"rate_limit": None}
        Route.objects.filter(name="bench.flow.rate").update(**fields)
    else:
        Resource.objects.filter(name=RESOURCE).update(breaker_enabled=on)
    for memo in (limits.ACTIVE, limits.LIMITS, breakers.ACTIVE, breakers.BREAKERS):
        memo.clear()  # this process's (bench.flow_counts runs deliveries here)
    if wait:
        time.sleep(SWITCH_WAIT)


def batch(
    case: Case, n: int, worker: WorkerProcess, broker: redis.Redis, prefix: str
) -> tuple[float, int]:
    """Seconds from the commit of ``n`` events of ``case.type`` until every delivery has
    succeeded, and how many times deliveries were held on the way."""
    source = bench_source()
    clean_slate(broker)
    if int(broker.llen(QUEUE)):
        raise BenchError(f"messages are still on the {QUEUE} queue before a run")
    seed_state(case, n)
    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        for i in range(n):
            publish(source=source, type=case.type, payload=case.payload(i, prefix),
                    external_id=f"{prefix}-{i}", partition_key=case.partition_key(i))  # fmt: skip
    wait_for_count(_succeeded, n, worker, f"{case.type} deliveries to succeed")
    elapsed = time.perf_counter() - committed[0]
    return elapsed, _check(case, n, prefix)


def seed_state(case: Case, n: int) -> None:
    """Each key has its document already (version 1): every delivery of the state row reads
    it and writes it with a compare-and-set UPDATE, a handler's steady state, not a first
    write."""
    if case.handler != "test.state.put":
        return
    HandlerState.objects.filter(handler=case.handler).delete()
    HandlerState.objects.bulk_create(
        HandlerState(handler=case.handler, partition_key=case.partition_key(i) or "",
                     data={"value": "seed"})
        for i in range(n)
    )  # fmt: skip


def _succeeded() -> int:
    return Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count()


def _check(case: Case, n: int, prefix: str) -> int:
    """Every delivery succeeded on its one attempt, and what the handler leaves is there.
    Returns the deferrals (times a delivery was held); more than none fails a row whose
    mechanism must hold nothing."""
    held = sum(Delivery.objects.values_list("deferrals", flat=True))
    found = {
        "events processed": Event.objects.filter(depth=0, status=EventStatus.PROCESSED).count(),
        "deliveries": Delivery.objects.filter(total_attempts=1).count(),
        "attempts": Attempt.objects.count(),
    }
    if case.handler == "test.burster":
        found["follow-ups"] = Event.objects.filter(depth=1).count()
    if case.handler == "test.state.put":
        found["states written"] = HandlerState.objects.filter(
            handler=case.handler, version=2, data__value=prefix
        ).count()
    wrong = {k: v for k, v in found.items() if v != n}
    if wrong:
        raise BenchError(f"{case.key}: after {n} deliveries expected {n} of each, found {wrong}")
    if held and not case.may_hold:
        raise BenchError(f"{case.key}: the mechanism held deliveries {held} times; it must not")
    return held


@dataclass
class Row:
    case: Case
    result: Comparison
    held: list[int] = field(default_factory=list)
    trips: tuple[Trips, Trips] | None = None  # baseline's, candidate's

    def extra_ms(self) -> float:
        """The median extra wall-clock milliseconds per delivery (the worker's throughput)."""
        r = self.result
        pairs = zip(r.baseline_s, r.candidate_s, strict=True)
        return statistics.median((c - b) / r.count * 1000 for b, c in pairs)


MAX_REPEATS = 5


def run(n: int, repeats: int, broker: redis.Redis, worker: WorkerProcess) -> list[Row]:
    rows = [
        Row(case, Comparison(key=case.key, title=case.title, unit="deliveries", count=n,
                             baseline=case.baseline, candidate=case.candidate))
        for case in CASES
    ]  # fmt: skip
    warm = min(n, 100)
    say(f"warm-up: {warm} of each")
    for case in [*CASES, UNCAPPED]:
        switch(case.switch, True)
        batch(case, warm, worker, broker, f"warm-{case.key}")
        switch(case.switch, False)
    for r in range(repeats):
        for i, row in enumerate(rows):
            case = row.case
            base_case = baseline_of(case)

            def baseline(r: int = r, case: Case = base_case) -> float:
                return batch(case, n, worker, broker, f"b{r}")[0]

            def candidate(r: int = r, row: Row = row) -> float:
                switch(row.case.switch, True)
                try:
                    seconds, held = batch(row.case, n, worker, broker, f"c{r}")
                finally:
                    switch(row.case.switch, False)
                row.held.append(held)
                return seconds

            # Alternate which side goes first, by row and by repeat, so drift lands on both.
            first, second = (baseline, candidate) if (r + i) % 2 == 0 else (candidate, baseline)
            a, b = first(), second()
            b_s, c_s = (a, b) if first is baseline else (b, a)
            row.result.add(b_s, c_s)
            held = f", held {row.held[-1]} times" if case.may_hold else ""
            say(f"repeat {r + 1}/{repeats} {case.key}: {case.baseline} {n / b_s:,.0f}/s, "
                f"{case.candidate} {n / c_s:,.0f}/s ({c_s / b_s:.2f}x, "
                f"{(c_s - b_s) / n * 1000:+.2f} ms a delivery{held})")  # fmt: skip
    return rows


def baseline_of(case: Case) -> Case:
    return UNCAPPED if case.baseline_type == UNCAPPED.type else PLAIN


def round_trips(rows: list[Row], broker: redis.Redis) -> None:
    """Each row's SQL statements and Redis commands per delivery, both sides, counted in
    this process (bench/flow_counts.py) with the lookup memo on, as in a deployment."""
    n = 50
    found: dict[str, Trips] = {}
    with override_settings(SWITCHYARD_LOOKUP_CACHE_SECONDS=3600):
        for case in [PLAIN, UNCAPPED, *(row.case for row in rows)]:
            switch(case.switch, True, wait=False)
            try:
                found[case.key] = flow_counts.count(case, n, broker, seed_state)
            finally:
                switch(case.switch, False, wait=False)
    for row in rows:
        row.trips = (found[baseline_of(row.case).key], found[row.case.key])


def _trips(row: Row) -> str:
    if row.trips is None:
        return "-"
    base, cand = row.trips
    return f"{cand.sql - base.sql:+.0f} SQL, {cand.redis - base.redis:+.0f} Redis"


def details(rows: list[Row]) -> str:
    """The Markdown table below the results: each mechanism's extra cost per delivery."""
    lines = [
        "**Flow control, on but holding nothing** (`flow.*`): what each mechanism adds to a "
        "delivery. *Extra time*: wall-clock milliseconds on the worker (threads, -c 4), the "
        "median over the repeats of the difference between the pair's runs divided by the "
        "deliveries. *Extra round trips*: SQL statements and Redis commands (a Lua script is "
        "one) per delivery, counted in process (bench/flow_counts.py), against the baseline's "
        f"{_plain_trips(rows)}.",
        "",
        "| Row | Baseline | Candidate | Extra time | Extra round trips | Ratio (spread) | Held |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row.result
        held = ", ".join(str(h) for h in row.held) if row.case.may_hold else "never"
        lines.append(
            f"| `{r.key}` | {r.baseline_text()} | {r.candidate_text()} | "
            f"{row.extra_ms():+.2f} ms | {_trips(row)} | {r.ratio:.2f}x ({r.spread()}) | {held} |"
        )
    return "\n".join(lines)


def _plain_trips(rows: list[Row]) -> str:
    base = next(
        (row.trips[0] for row in rows if row.trips and row.case.baseline_type == NOOP_TYPE), None
    )
    return f"{base.sql:.0f} SQL statements and {base.redis:.0f} Redis commands" if base else "-"


def run_group(sizes: Sizes, broker: redis.Redis, workdir: Path) -> tuple[list[Comparison], str]:
    """The flow rows on a worker of their own, stopped before returning."""
    worker = WorkerProcess(
        queues=QUEUE,
        log_path=workdir / "flow-worker.log",
        pool="threads",
        concurrency=4,
        env={"SWITCHYARD_TEST_LOOKUP_CACHE_SECONDS": f"{MEMO_SECONDS:g}"},
    )
    setup()
    worker.start()
    try:
        time.sleep(1.0)
        # Nine pairs a repeat: five repeats keep the group near ten minutes of a full run.
        rows = run(sizes.deliveries, min(sizes.repeats, MAX_REPEATS), broker, worker)
    finally:
        worker.stop()
    say("round trips per delivery, counted in process")
    round_trips(rows, broker)
    say(f"plain route: {_plain_trips(rows)}")
    for row in rows:
        say(f"{row.case.key}: {_trips(row)}")
    return [row.result for row in rows], details(rows)
