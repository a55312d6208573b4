"""`make demo` / `make run`: the broker `up` chooses (Redis when it answers, else a SQLite
file) and the transport options each gets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings as django_settings
from kombu import Connection

from agents_project.broker import choose_broker_url, redact_url, transport_options
from tests.conftest import ROOT

from .helpers import free_port


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
