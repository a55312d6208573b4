"""`make demo` / `make run`: broker choice, ensure_admin, demo_setup, demo_feed and `up`."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from kombu import Connection

from agents_project.broker import choose_broker_url, redact_url, transport_options
from events.management.commands.up import Command as UpCommand
from events.models import Delivery, Event, Source
from tests.conftest import ROOT, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def var_dir(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private var/ for the commands, and no admin password from the environment."""
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("DJANGO_ADMIN_PASSWORD", raising=False)
    return tmp_path


# --- broker choice ------------------------------------------------------------------------


def test_broker_is_redis_when_redis_answers(tmp_path: Path) -> None:
    # given the private test Redis, which answers PING
    # when
    url, description = choose_broker_url(django_settings.REDIS_URL, var_dir=tmp_path)

    # then
    assert url == django_settings.REDIS_URL
    assert description == f"Redis at {django_settings.REDIS_URL}"
    assert list(tmp_path.iterdir()) == []


def test_broker_falls_back_to_sqlite_quickly_when_nothing_listens(tmp_path: Path) -> None:
    # given a port nobody listens on
    redis_url = f"redis://127.0.0.1:{free_port()}/0"

    # when
    started = time.monotonic()
    url, description = choose_broker_url(redis_url, var_dir=tmp_path)
    elapsed = time.monotonic() - started

    # then
    assert url == f"sqla+sqlite:///{tmp_path.resolve()}/broker.sqlite3"
    assert description.startswith(f"SQLite file {tmp_path.resolve()}/broker.sqlite3 ")
    assert f"no Redis answered at {redis_url}" in description
    assert elapsed < 3


def test_broker_description_hides_the_redis_password(tmp_path: Path) -> None:
    redis_url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"

    _, description = choose_broker_url(redis_url, var_dir=tmp_path)

    assert "hunter2" not in description
    assert redact_url(redis_url) in description
    assert redact_url(redis_url).startswith("redis://:***@127.0.0.1:")


def test_sqlite_fallback_carries_messages_with_its_transport_options(tmp_path: Path) -> None:
    # given the fallback URL and the options settings give that transport
    url, _ = choose_broker_url(f"redis://127.0.0.1:{free_port()}/0", var_dir=tmp_path)
    options = transport_options(url, visibility_timeout=600)
    assert options == {"connect_args": {"timeout": 20}}

    # when a message goes through it
    with Connection(url, transport_options=options) as conn:
        queue = conn.SimpleQueue("launcher-test")
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        message.ack()
        queue.close()

    # then
    assert message.payload == {"n": 1}
    assert (tmp_path / "broker.sqlite3").is_file()


def test_redis_transport_options_keep_the_visibility_timeout() -> None:
    assert transport_options("redis://127.0.0.1:6379/0", visibility_timeout=4200) == {
        "visibility_timeout": 4200,
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
    }


def test_celery_app_can_use_the_sqlite_fallback_broker(tmp_path: Path) -> None:
    """What `up` starts worker and beat with: the project's settings and the fallback URL."""
    url = f"sqla+sqlite:///{tmp_path.resolve()}/broker.sqlite3"
    script = (
        "from agents_project.celery import app\n"
        "with app.connection_for_write() as conn:\n"
        "    queue = conn.SimpleQueue('launcher-test')\n"
        "    queue.put({'n': 2})\n"
        "    print(queue.get(timeout=5).payload)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "agents_project.settings",
        "CELERY_BROKER_URL": url,
        "DEBUG": "true",
        "SWITCHYARD_VAR_DIR": str(tmp_path),
    }

    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "{'n': 2}"


# --- ensure_admin -------------------------------------------------------------------------


@pytest.mark.django_db
def test_ensure_admin_twice_creates_one_superuser_with_a_stable_password(var_dir: Path) -> None:
    # when
    first = run("ensure_admin")
    second = run("ensure_admin")

    # then one superuser, whose password is in a file only its owner can read
    users = get_user_model().objects.filter(username="admin")
    assert users.count() == 1
    user = users.get()
    assert user.is_superuser and user.is_staff and user.is_active
    path = var_dir / "admin-password"
    password = path.read_text().strip()
    assert len(password) == 20
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert user.check_password(password)
    # and both runs say how to log in
    assert "admin user 'admin' created. Log in at http://127.0.0.1:8000/admin/" in first
    assert f"password: {password}" in first
    assert "admin user 'admin' exists. Log in at http://127.0.0.1:8000/admin/" in second
    assert f"password: {password}   (saved in {path})" in second
    assert path.read_text().strip() == password


@pytest.mark.django_db
def test_ensure_admin_reuses_the_saved_password_for_a_new_database(var_dir: Path) -> None:
    # given an admin created once, then lost with the database
    run("ensure_admin")
    password = (var_dir / "admin-password").read_text().strip()
    get_user_model().objects.all().delete()

    # when
    run("ensure_admin")

    # then
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert (var_dir / "admin-password").read_text().strip() == password


@pytest.mark.django_db
def test_ensure_admin_takes_the_password_from_the_environment(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setenv("DJANGO_ADMIN_PASSWORD", "correct-horse-battery")

    # when
    out = run("ensure_admin", "--base-url", "http://127.0.0.1:8765")

    # then the password is used, neither saved nor printed
    assert get_user_model().objects.get(username="admin").check_password("correct-horse-battery")
    assert not (var_dir / "admin-password").exists()
    assert "correct-horse-battery" not in out
    assert "Log in at http://127.0.0.1:8765/admin/" in out
    assert "password: the value of DJANGO_ADMIN_PASSWORD" in out


@pytest.mark.django_db
def test_ensure_admin_says_when_the_saved_password_is_out_of_date(var_dir: Path) -> None:
    # given an admin whose password was changed after it was saved
    run("ensure_admin")
    user = get_user_model().objects.get(username="admin")
    user.set_password("changed-in-the-admin")
    user.save()

    # when
    out = run("ensure_admin")

    # then
    saved = (var_dir / "admin-password").read_text().strip()
    assert saved not in out
    assert "changed since it was saved" in out
    assert "manage.py changepassword admin" in out


# --- demo_setup ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_demo_setup_twice_keeps_one_source_and_one_secret(var_dir: Path) -> None:
    # when
    first = run("demo_setup")
    second = run("demo_setup")

    # then
    path = var_dir / "demo-source-secret"
    secret = path.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    source = Source.objects.get(slug="demo")
    assert (source.kind, source.secrets, source.enabled) == ("hmac", [secret], True)
    assert "demo source 'demo' created: POST http://127.0.0.1:8000/hooks/demo" in first
    assert "demo source 'demo' up to date" in second
    assert secret not in first + second
    # and the sources the built-in agents' recorded events come through, same way
    for slug, kind in (("demo-github", "github"), ("demo-stripe", "stripe")):
        path = var_dir / f"{slug}-secret"
        provider_secret = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        provider = Source.objects.get(slug=slug)
        assert (provider.kind, provider.secrets) == (kind, [provider_secret])
        assert f"demo source {slug!r} created (kind {kind}" in first
        assert f"demo source {slug!r} up to date" in second
        assert provider_secret not in first + second
    assert Source.objects.count() == 3
    # and the default schedules
    assert "daily-briefing" in first


@pytest.mark.django_db
def test_demo_setup_repairs_a_changed_demo_source(var_dir: Path) -> None:
    # given a demo source someone disabled and re-keyed
    run("demo_setup")
    secret = (var_dir / "demo-source-secret").read_text().strip()
    Source.objects.filter(slug="demo").update(enabled=False, secrets=["something-else"])

    # when
    out = run("demo_setup")

    # then
    source = Source.objects.get(slug="demo")
    assert (source.kind, source.secrets, source.enabled) == ("hmac", [secret], True)
    assert "demo source 'demo' updated" in out


# --- demo_feed ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_demo_feed_posts_the_sample_set(var_dir: Path, routes: None, live_server: Any) -> None:
    # given the demo source and an admin, and the web server
    run("demo_setup")
    run("ensure_admin")
    port = urlsplit(live_server.url).port
    assert port is not None

    # when
    out = run("demo_feed", "--port", str(port), "--wait", "--wait-timeout", "10")

    # then five new events are stored, with the demo handlers' deliveries
    events = {e.external_id: e for e in Event.objects.filter(type__startswith="reservation.")}
    assert len(events) == 5
    run_id = next(iter(events)).split("-", 1)[1].rsplit("-", 1)[0]
    assert sorted(events) == [f"demo-{run_id}-{n}" for n in range(1, 6)]
    types = {eid.rsplit("-", 1)[1]: e.type for eid, e in events.items()}
    assert types == {
        "1": "reservation.cancelled",
        "2": "reservation.cancelled",
        "3": "reservation.cancelled",
        "4": "reservation.cancelled",
        "5": "reservation.no_show",
    }
    assert events[f"demo-{run_id}-3"].payload["simulate"] == "permanent_failure"
    assert events[f"demo-{run_id}-4"].payload["simulate"] == "transient_failure"
    assert events[f"demo-{run_id}-5"].status == "ignored"
    handlers = sorted(
        Delivery.objects.filter(event__in=events.values()).values_list(
            "event__external_id", "handler"
        )
    )
    assert handlers == sorted(
        (f"demo-{run_id}-{n}", h) for n in range(1, 5) for h in ("demo.notify_guest", "demo.rebook")
    )
    # and the answers were 202 for each new event and 200 for the duplicate
    statuses = re.findall(r"^  (\d{3})  (\S+)\s+(\S+)", out, flags=re.MULTILINE)
    assert statuses == [
        ("202", "reservation.cancelled", f"demo-{run_id}-1"),
        ("202", "reservation.cancelled", f"demo-{run_id}-2"),
        ("202", "reservation.cancelled", f"demo-{run_id}-3"),
        ("202", "reservation.cancelled", f"demo-{run_id}-4"),
        ("202", "reservation.no_show", f"demo-{run_id}-5"),
        ("200", "reservation.cancelled", f"demo-{run_id}-1"),
        ("202", "ticket.created", "helpdesk"),
        ("202", "alert.fired", "monitoring"),
        ("202", "github.pull_request.opened", "GitHub"),
        ("202", "stripe.invoice.payment_failed", "Stripe"),
    ]
    # and one recorded event per built-in agent, each with its agent's delivery, the GitHub
    # and Stripe ones through their own signed sources, the briefing as its schedule's tick
    agents = sorted(
        Delivery.objects.exclude(event__in=events.values()).values_list(
            "event__source__slug", "event__type", "handler"
        )
    )
    assert agents == [
        ("demo", "alert.fired", "alerts.triage"),
        ("demo", "ticket.created", "support.triage"),
        ("demo-github", "github.pull_request.opened", "github.pr_review"),
        ("demo-stripe", "stripe.invoice.payment_failed", "payments.recovery"),
        ("schedules", "schedule.daily-briefing", "briefing.daily"),
    ]
    assert "schedule 'daily-briefing' run now" in out and ": published)" in out
    assert f"http://127.0.0.1:{port}/admin/handlers/approval/" in out
    assert f"http://127.0.0.1:{port}/admin/events/event/" in out
    password = (var_dir / "admin-password").read_text().strip()
    assert f"password: {password}" in out


@pytest.mark.django_db(transaction=True)
def test_demo_feed_twice_adds_new_events(var_dir: Path, routes: None, live_server: Any) -> None:
    run("demo_setup")
    port = str(urlsplit(live_server.url).port)

    run("demo_feed", "--port", port)
    second = run("demo_feed", "--port", port)

    # 5 samples + 4 agent events per run through the demo sources
    fed = Event.objects.filter(source__slug__in=["demo", "demo-github", "demo-stripe"])
    assert fed.count() == 2 * 9
    # and a briefing per run, unless the first is still in flight (overlap policy skip: when
    # no worker runs the first one)
    briefings = Event.objects.filter(type="schedule.daily-briefing").count()
    assert (briefings, ": skipped)" in second) in ((1, True), (2, False))


@pytest.mark.django_db
def test_demo_feed_gives_up_when_the_web_server_never_answers(var_dir: Path) -> None:
    run("demo_setup")

    with pytest.raises(CommandError, match=r"did not answer GET /healthz with 200 within 1 s"):
        run("demo_feed", "--port", str(free_port()), "--wait", "--wait-timeout", "1")


@pytest.mark.django_db
def test_demo_feed_needs_the_demo_source() -> None:
    with pytest.raises(CommandError, match=r"run manage\.py demo_setup"):
        run("demo_feed", "--port", str(free_port()))


# --- up -----------------------------------------------------------------------------------


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
