"""Results as ratios against a baseline measured in the same run, and the targets they meet.

A benchmark runs its baseline and its candidate back to back, ``repeats`` times. Each repeat
gives one ratio (candidate time / baseline time for the same number of operations); the
reported ratio is the median of those, so a burst of load from a neighbour on the machine
moves one pair, not the result. Absolute rates are printed for context only: they say more
about the machine than about the code.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .services import own_peak_kib, own_rss_kib, reset_own_peak

TARGETS_FILE = Path(__file__).with_name("targets.toml")


@dataclass(frozen=True)
class Sizes:
    """How much work one run does: operations per measured run, and how many repeats."""

    ingest: int
    http: int
    deliveries: int
    repeats: int


@dataclass
class Comparison:
    """Time for ``count`` operations, baseline against candidate, per repeat."""

    key: str
    title: str
    unit: str  # what one operation is, for the rate: "events", "requests", "deliveries"
    count: int
    baseline: str
    candidate: str
    baseline_s: list[float] = field(default_factory=list)
    candidate_s: list[float] = field(default_factory=list)

    def add(self, baseline_s: float, candidate_s: float) -> None:
        self.baseline_s.append(baseline_s)
        self.candidate_s.append(candidate_s)

    @property
    def ratios(self) -> list[float]:
        return [c / b for b, c in zip(self.baseline_s, self.candidate_s, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def baseline_rate(self) -> float:
        return self.count / statistics.median(self.baseline_s)

    @property
    def candidate_rate(self) -> float:
        return self.count / statistics.median(self.candidate_s)

    def spread(self) -> str:
        r = self.ratios
        return f"{min(r):.2f}-{max(r):.2f}" if len(r) > 1 else "-"

    def baseline_text(self) -> str:
        return f"{self.baseline}: {self.baseline_rate:,.0f} {self.unit}/s"

    def candidate_text(self) -> str:
        return f"{self.candidate}: {self.candidate_rate:,.0f} {self.unit}/s"


@dataclass
class Memory:
    """Resident memory before and after (or at the peak of) some work."""

    key: str
    title: str
    baseline: str
    candidate: str
    before_kib: int
    after_kib: int

    @property
    def ratio(self) -> float:
        return self.after_kib / self.before_kib

    def spread(self) -> str:
        return "-"

    def baseline_text(self) -> str:
        return f"{self.baseline}: {self.before_kib / 1024:,.1f} MiB"

    def candidate_text(self) -> str:
        return f"{self.candidate}: {self.after_kib / 1024:,.1f} MiB"


@dataclass
class Measured:
    """A figure measured on both sides, once per repeat: a rate, a latency, CPU per request.

    ``higher_is_better`` (a rate): the ratio is baseline / candidate, so that like every other
    ratio here it is a cost and lower is better. Otherwise candidate / baseline. A fixed limit
    (a latency target) is a baseline that is the same number every repeat.
    """

    key: str
    title: str
    unit: str
    baseline: str
    candidate: str
    higher_is_better: bool = False
    digits: int = 0
    baseline_values: list[float] = field(default_factory=list)
    candidate_values: list[float] = field(default_factory=list)

    def add(self, baseline: float, candidate: float) -> None:
        self.baseline_values.append(baseline)
        self.candidate_values.append(candidate)

    @property
    def ratios(self) -> list[float]:
        pairs = zip(self.baseline_values, self.candidate_values, strict=True)
        # A side that did nothing (a receiver answering only errors) is an infinite ratio, a
        # MISS in the report, not a crash that loses the whole run's results.
        if self.higher_is_better:
            return [b / c if c else math.inf for b, c in pairs]
        return [c / b if b else math.inf for b, c in pairs]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def spread(self) -> str:
        r = self.ratios
        return f"{min(r):.2f}-{max(r):.2f}" if len(r) > 1 else "-"

    def _text(self, label: str, values: list[float]) -> str:
        return f"{label}: {statistics.median(values):,.{self.digits}f} {self.unit}"

    def baseline_text(self) -> str:
        return self._text(self.baseline, self.baseline_values)

    def candidate_text(self) -> str:
        return self._text(self.candidate, self.candidate_values)


Result = Comparison | Memory | Measured


@dataclass(frozen=True)
class Target:
    key: str
    max_ratio: float
    why: str


def load_targets(path: Path = TARGETS_FILE) -> dict[str, Target]:
    with path.open("rb") as f:
        raw = tomllib.load(f)
    return {
        key: Target(key=key, max_ratio=float(entry["max_ratio"]), why=str(entry["why"]).strip())
        for key, entry in raw.items()
    }


def verdict(result: Result, targets: dict[str, Target]) -> str:
    target = targets.get(result.key)
    if target is None:
        return "info"
    return "PASS" if result.ratio <= target.max_ratio else "MISS"


def timed(fn: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    """Wall-clock seconds for one call of ``fn(*args, **kwargs)``."""
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


class PeakRss:
    """This process's peak RSS over a block of work.

    Linux lets a process reset its own high-water mark (``clear_refs`` 5), which makes VmHWM
    exact; where that is refused, a thread samples VmRSS every 2 ms instead.
    """

    def __init__(self) -> None:
        self.before_kib = 0
        self.peak_kib = 0
        self._exact = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        self.before_kib = own_rss_kib()
        self.peak_kib = self.before_kib
        self._exact = reset_own_peak()
        if not self._exact:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak_kib = max(self.peak_kib, own_rss_kib())

    def __exit__(self, *exc: object) -> None:
        if self._exact:
            self.peak_kib = max(self.peak_kib, own_peak_kib())
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
        self.peak_kib = max(self.peak_kib, own_rss_kib())
