"""The results table (console and Markdown), the machine description, and docs/benchmarks.md.

The page's prose lives in ``report_template.md`` next to this file; only the ``$``-placeholders
are filled in from the run.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from string import Template

from tests.redis_server import RedisServer

from .measure import Result, Sizes, Target, verdict
from .services import ScratchDatabase

TEMPLATE = Path(__file__).with_name("report_template.md")


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    memory_gib: float
    os: str
    python: str
    postgres: str
    redis: str
    django: str
    celery: str
    load: str  # load average when the run started: how busy the shared machine was

    def lines(self) -> list[str]:
        return [
            f"CPU: {self.cpu}, {self.cores} cores",
            f"Memory: {self.memory_gib:.1f} GiB",
            f"OS: {self.os}",
            f"Python {self.python}, Django {self.django}, Celery {self.celery}",
            f"PostgreSQL {self.postgres}, Redis {self.redis} (both on loopback)",
            f"Load average at start (1, 5, 15 min): {self.load}",
        ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def machine_info(db: ScratchDatabase, redis_server: RedisServer) -> Machine:
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        memory_gib=_memory_gib(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        postgres=db.server_version(),
        redis=redis_server.version(),
        django=version("django"),
        celery=version("celery"),
        load=", ".join(f"{x:.2f}" for x in os.getloadavg()),
    )


# --- tables -----------------------------------------------------------------------------------

HEADER = ["Benchmark", "Baseline", "Candidate", "Ratio", "Spread", "Target", "Result"]


def _rows(results: list[Result], targets: dict[str, Target]) -> list[list[str]]:
    rows = []
    for r in results:
        target = targets.get(r.key)
        rows.append(
            [
                r.key,
                r.baseline_text(),
                r.candidate_text(),
                f"{r.ratio:.2f}x",
                r.spread(),
                f"<= {target.max_ratio:g}x" if target else "-",
                verdict(r, targets),
            ]
        )
    return rows


def console_table(results: list[Result], targets: dict[str, Target]) -> str:
    rows = [HEADER, *_rows(results, targets)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(results: list[Result], targets: dict[str, Target]) -> str:
    rows = _rows(results, targets)
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row, r in zip(rows, results, strict=True):
        row[0] = f"`{r.key}`: {r.title}"
        row[6] = f"**{row[6]}**"
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(out)


def targets_list(targets: dict[str, Target]) -> str:
    return "\n".join(
        f"- **`{t.key}` <= {t.max_ratio:g}x.** {' '.join(t.why.split())}" for t in targets.values()
    )


def write_doc(
    path: Path,
    results: list[Result],
    targets: dict[str, Target],
    machine: Machine,
    sizes: Sizes,
    started: datetime,
    command: str,
    duration_s: float,
    details: str = "",
) -> None:
    minutes, seconds = divmod(round(duration_s), 60)
    text = Template(TEMPLATE.read_text()).substitute(
        date=started.strftime("%Y-%m-%d %H:%M UTC"),
        command=command,
        duration=f"{minutes} min {seconds} s" if minutes else f"{seconds} s",
        machine="\n".join(f"- {line}" for line in machine.lines()),
        results=markdown_table(results, targets),
        targets=targets_list(targets),
        ingest=f"{sizes.ingest:,}",
        http=f"{sizes.http:,}",
        deliveries=f"{sizes.deliveries:,}",
        repeats=sizes.repeats,
        details=details,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
