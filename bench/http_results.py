"""What the HTTP benchmark records, and what it reports from it: each wrk run and fixed-rate
run of each side, then the `webhook.*` measurements (ratios against the reference) and the
table of every side's numbers."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .fixed_rate import FixedRateResult
from .measure import Measured
from .processes import Server

LOAD_FRACTION = 0.8  # the fixed-rate load: this share of each side's own maximum rate
P99_LIMIT_MS = 50.0  # issue 9: /hooks p99 under 50 ms at that load


@dataclass
class WrkRun:
    duration_s: float
    requests: int
    statuses: dict[str, int]
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    cpu_s: float
    db_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    load: float = 0.0  # 1-minute load average at the end: how busy the shared box was

    @property
    def accepted(self) -> int:
        return self.statuses.get("202", 0)

    @property
    def rate(self) -> float:
        return self.accepted / self.duration_s

    @property
    def error_count(self) -> int:
        return sum(self.errors.values()) + self.requests - self.accepted


@dataclass
class Side:
    name: str
    server: Server
    url_path: str
    wrk: list[WrkRun] = field(default_factory=list)
    fixed: list[FixedRateResult] = field(default_factory=list)


@dataclass
class HttpResults:
    rate: Measured
    p99: Measured
    cpu: Measured
    floor: Measured
    details: str


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def results(reference: Side, switchyard: Side, floor: Side) -> HttpResults:
    rate = Measured(
        key="webhook.rate",
        title="GitHub webhook over HTTP, max rate (wrk -t2 -c32): reference / Switchyard",
        unit="req/s",
        baseline="verify+LPUSH",
        candidate="/hooks (Procfile web)",
        higher_is_better=True,
    )
    p99 = Measured(
        key="webhook.p99",
        title=f"/hooks p99 latency at {LOAD_FRACTION:.0%} of its own max rate, against "
        f"{P99_LIMIT_MS:g} ms",
        unit="ms",
        baseline="limit",
        candidate="/hooks p99",
        digits=1,
    )
    cpu = Measured(
        key="webhook.cpu",
        title="CPU per accepted webhook, server process tree: Switchyard / reference",
        unit="CPU ms",
        baseline="verify+LPUSH",
        candidate="/hooks",
        digits=2,
    )
    floor_rate = Measured(
        key="webhook.floor",
        title="The floor of a durable ingest (verify, parse, one INSERT of event + delivery, "
        "LPUSH; bench/floor_receiver.py), max rate: reference / floor",
        unit="req/s",
        baseline="verify+LPUSH",
        candidate="floor",
        higher_is_better=True,
    )
    for ref, sy, sy_f, fl in zip(
        reference.wrk, switchyard.wrk, switchyard.fixed, floor.wrk, strict=True
    ):
        rate.add(ref.rate, sy.rate)
        floor_rate.add(ref.rate, fl.rate)
        p99.add(P99_LIMIT_MS, sy_f.percentile(99))
        cpu.add(1000 * ref.cpu_s / max(ref.accepted, 1), 1000 * sy.cpu_s / max(sy.accepted, 1))
    return HttpResults(rate, p99, cpu, floor_rate, _details(reference, switchyard, floor))


def _details(reference: Side, switchyard: Side, floor: Side) -> str:
    def row(side: Side, label: str) -> str:
        runs, fixed = side.wrk, side.fixed
        accepted = sum(w.accepted for w in runs)
        cpu = 1000 * sum(w.cpu_s for w in runs) / max(accepted, 1)
        extra = 1000 * sum(w.cpu_s + w.db_cpu_s + w.redis_cpu_s for w in runs) / max(accepted, 1)
        errors = sum(w.error_count for w in runs) + sum(
            f.errors + f.sent - f.statuses.get(202, 0) for f in fixed
        )
        return (
            f"| {label} | {_median([w.rate for w in runs]):,.0f} "
            f"| {_median([w.p50_ms for w in runs]):.0f} / {_median([w.p99_ms for w in runs]):.0f}"
            f" | {_median([f.rate for f in fixed]):,.0f} "
            f"| {_median([f.percentile(50) for f in fixed]):.1f} / "
            f"{_median([f.percentile(99) for f in fixed]):.1f} "
            f"| {errors} | {cpu:.2f} | {extra:.2f} | {_median([w.load for w in runs]):.1f} |"
        )

    return "\n".join(
        [
            "**Webhooks over HTTP** (`webhook.*`), every side:",
            "",
            "| Server | Max req/s (wrk) | wrk p50 / p99 ms (saturated) | Fixed rate req/s "
            "| p50 / p99 ms at that rate | Errors and non-202 | CPU ms/webhook, server "
            "| CPU ms/webhook, + PostgreSQL + Redis | Load average |",
            "|---|---|---|---|---|---|---|---|---|",
            row(reference, "reference: `uvicorn --workers 2`, verify + LPUSH"),
            row(floor, "floor: `uvicorn --workers 2`, verify + parse + INSERT + LPUSH"),
            row(switchyard, "Switchyard: the Procfile's `web:` line, `/hooks/<slug>`"),
        ]
    )
