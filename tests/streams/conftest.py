"""Fixtures for the stream consumer tests: `manage.py consume_stream` as a real subprocess
against the test database and the session's private redis-server, a fresh stream key per test,
and a way to hold publishes back (a table lock) so a consumer can be caught with entries
pending."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from django.db import connection, transaction

from events.models import Event, Source
from tests.conftest import ROOT, RedisServer, _test_database_url, wait_until

GROUP = "g"
SUMMARY_RE = re.compile(
    r"^stopped: published (\d+), duplicates (\d+), dead-lettered (\d+), "
    r"failed \(left pending\) (\d+), claimed from idle consumers (\d+)$",
    re.MULTILINE,
)


class Consumer:
    """One `manage.py consume_stream` process; stdout (progress) and stderr (logs) to files."""

    def __init__(self, argv: list[str], env: dict[str, str], logdir: Path, name: str) -> None:
        self.out_path = logdir / f"{name}.out"
        self.err_path = logdir / f"{name}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "consume_stream", *argv],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def logs(self) -> str:
        return self.err_path.read_text(errors="replace")[-5000:]

    def wait_ready(self) -> Consumer:
        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"consumer exited with {self.process.returncode}:\n{self.logs()}")
            return self.output().startswith("consuming ")

        wait_until(ready, timeout=60, what="the consumer's start line")
        return self

    def terminate(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Ask it to stop (SIGTERM, or SIGINT as Ctrl-C sends) and wait for the exit code."""
        self.process.send_signal(sig)
        return self.wait()

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"consumer did not exit:\n{self.logs()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acks."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def summary(self) -> dict[str, int]:
        match = SUMMARY_RE.search(self.output())
        assert match, f"no summary in:\n{self.output()}\n{self.logs()}"
        keys = ("published", "duplicates", "dead_lettered", "failed", "claimed")
        return dict(zip(keys, map(int, match.groups()), strict=True))


@pytest.fixture
def stream() -> str:
    return f"test-stream-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def r(redis_server: RedisServer) -> redis.Redis:
    """A client of the session's Redis that answers with text."""
    return redis.Redis(host="127.0.0.1", port=redis_server.port, decode_responses=True)


def add(r: redis.Redis, stream: str, fields: Mapping[str, str | bytes]) -> str:
    """XADD an entry; its id."""
    return str(r.xadd(stream, cast(Any, fields)))


@pytest.fixture
def stream_source(transactional_db: None) -> Source:
    return Source.objects.create(slug="orders", kind="stream")


@pytest.fixture
def consumers(
    transactional_db: None, tmp_path: Path, stream: str, stream_source: Source
) -> Iterator[Callable[..., Consumer]]:
    """Start consumers of ``stream`` into the ``orders`` source; killed if still running at
    the end (before the database is flushed)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _test_database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    started: list[Consumer] = []

    def start(*options: str, ready: bool = True) -> Consumer:
        # Short reads, so a stop request is acted on within a tenth of a second.
        argv = [stream, "--group", GROUP, "--source", stream_source.slug, "--block", "100"]
        argv += options
        consumer = Consumer(argv, env, tmp_path, f"consumer-{len(started)}")
        started.append(consumer)
        return consumer.wait_ready() if ready else consumer

    yield start
    for consumer in started:
        if consumer.process.poll() is None:
            consumer.kill()


@contextmanager
def publishes_held() -> Iterator[None]:
    """Hold every insert into the event table until the block ends: a consumer that has read
    entries blocks on its first publish, with the entries pending in the group."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE events_event IN SHARE MODE")
        yield


def pending_by_consumer(r: redis.Redis, stream: str) -> dict[str, int]:
    summary: Any = r.xpending(stream, GROUP)
    return {c["name"]: int(c["pending"]) for c in summary["consumers"]}


def events(source: Source, type: str | None = None) -> dict[str, Event]:
    rows = Event.objects.filter(source=source)
    if type is not None:
        rows = rows.filter(type=type)
    return {event.external_id: event for event in rows}


def wait_consumed(r: redis.Redis, stream: str, last_id: str) -> None:
    """Wait until the group has been handed every entry up to ``last_id`` and has none left
    pending: each one is then stored (or dead-lettered) and acknowledged."""

    def consumed() -> bool:
        group: Any = r.xinfo_groups(stream)[0]
        return bool(group["last-delivered-id"] == last_id and group["pending"] == 0)

    wait_until(consumed, what=f"every entry up to {last_id!r} to be consumed")
