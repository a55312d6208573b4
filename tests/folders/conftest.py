"""A folder source, and `manage.py watch_folder` run as a real process against the test
database (the same one pytest-django made, as tests/conftest.py builds its URL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from events.models import Source
from tests.conftest import ROOT, _test_database_url, wait_until


@pytest.fixture
def folder_source(db: None) -> Source:
    return Source.objects.create(slug="inbox", kind="folder")


class WatchProcess:
    """One `python manage.py watch_folder ...` process; its output goes to a log file."""

    def __init__(self, args: list[str], database_url: str, log_path: Path) -> None:
        self.log_path = log_path
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1",
        }
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "watch_folder", *args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self) -> list[str]:
        """Progress lines, without the pipeline's log lines (they start with a date)."""
        return [line for line in self.output().splitlines() if not line[:2].isdigit()]

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 30.0) -> list[str]:
        """Wait until ``count`` progress lines start with ``prefix``; return them."""

        def matching() -> list[str]:
            if self.process.poll() is not None:
                pytest.fail(f"watch_folder exited ({self.process.returncode}):\n{self.output()}")
            found = [line for line in self.lines() if line.startswith(prefix)]
            return found if len(found) >= count else []

        found: list[str] = wait_until(matching, timeout=timeout, what=f"{prefix!r} x{count}")
        return found

    def wait_for_start(self) -> None:
        wait_until(
            lambda: (
                any(line.startswith("found ") for line in self.lines())
                or self.process.poll() is not None
            ),
            timeout=60,
            what="watch_folder to start",
        )
        if self.process.poll() is not None:
            pytest.fail(f"watch_folder exited early:\n{self.output()}")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)


@pytest.fixture
def watch_folder(
    transactional_db: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., WatchProcess]]:
    """Start watchers; any still running at the end is killed (by its own pid) before the
    database is flushed."""
    logdir = tmp_path_factory.mktemp("watch_folder")
    database_url = _test_database_url()
    started: list[WatchProcess] = []

    def start(*args: Any) -> WatchProcess:
        proc = WatchProcess(
            [str(a) for a in args], database_url, logdir / f"watch-{len(started)}.log"
        )
        started.append(proc)
        proc.wait_for_start()
        return proc

    yield start
    for proc in started:
        if proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait(timeout=10)
