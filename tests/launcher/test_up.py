"""`make demo` / `make run`: `manage.py up` refuses a busy port, gives its processes what they
need, runs web, worker and beat with the demo, and stops them all on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management.base import CommandError

from events.management.commands.up import Command as UpCommand
from events.models import Event
from tests.conftest import ROOT, wait_until

from .helpers import free_port, run


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.django_db
def test_up_refuses_a_port_in_use(listening_port: int) -> None:
    with pytest.raises(
        CommandError, match=f"something already listens on 127.0.0.1:{listening_port}"
    ):
        run("up", "--port", str(listening_port))


def test_up_gives_its_processes_the_broker_port_and_virtualenv() -> None:
    env = UpCommand.child_environment(
        broker_url="sqla+sqlite:////x/broker.sqlite3", port=8765, base_url="http://127.0.0.1:8765"
    )

    assert env["CELERY_BROKER_URL"] == "sqla+sqlite:////x/broker.sqlite3"
    assert env["PORT"] == "8765"
    assert env["SWITCHYARD_PUBLIC_URL"] == "http://127.0.0.1:8765"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def _pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # A zombie still answers kill(0); it is gone for our purposes.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state != "Z":
            alive.append(pid)
    return alive


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["redis", "sqlite"])
def test_up_demo_runs_everything_and_ctrl_c_stops_it(broker: str, tmp_path: Path) -> None:
    # given the project's settings on the test database, a var/ and a port of our own, and
    # either the test Redis or no Redis at all
    from tests.conftest import _test_database_url

    port = free_port()
    var = tmp_path / "var"
    # A Redis database of its own, so the session's other workers and this one never take
    # each other's messages.
    redis_url = (
        django_settings.REDIS_URL.rsplit("/", 1)[0] + "/5"
        if broker == "redis"
        else f"redis://127.0.0.1:{free_port()}/0"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "agents_project.settings",
        "DATABASE_URL": _test_database_url(),
        "SWITCHYARD_VAR_DIR": str(var),
        "REDIS_URL": redis_url,
        "DEBUG": "true",
        "WORKER_CONCURRENCY": "2",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("CELERY_BROKER_URL", "SWITCHYARD_PUBLIC_URL", "DJANGO_ADMIN_PASSWORD"):
        env.pop(name, None)
    log_path = tmp_path / "up.log"

    # when `manage.py up --demo` runs until the demo's events settle, then gets Ctrl-C
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def settled() -> bool:
            if up.poll() is not None:
                pytest.fail(f"up exited early:\n{log_path.read_text()[-5000:]}")
            statuses = set(Event.objects.values_list("status", flat=True))
            return {"processed", "dead_lettered", "ignored", "failed"} <= statuses

        wait_until(settled, timeout=90, interval=0.5, what="the demo events to settle")
    finally:
        os.killpg(up.pid, signal.SIGINT)
        code = up.wait(timeout=60)

    # then it said what it did, and nothing it started is left
    output = log_path.read_text()
    assert code == 0, output[-5000:]
    expected_broker = (
        f"==> broker: Redis at {redis_url}"
        if broker == "redis"
        else f"==> broker: SQLite file {var.resolve()}/broker.sqlite3 through kombu's SQLAlchemy"
    )
    for line in (
        f"==> checking that 127.0.0.1:{port} is free",
        expected_broker,
        "==> migrating the database",
        f"==> collecting static files into {var}/static",
        "admin user 'admin' created.",
        "demo source 'demo' created",
        f"demo feed: posting sample events to http://127.0.0.1:{port}/hooks/demo",
        "SIGINT received",
        "==> stopped",
    ):
        assert line in output
    assert output.count("SIGINT received") == 1
    pids = [int(p) for p in re.findall(r"(?:web|worker|beat)\.1 started \(pid=(\d+)\)", output)]
    assert len(pids) == 3
    wait_until(lambda: not _pids_alive(pids), timeout=10, what="web, worker and beat to exit")
