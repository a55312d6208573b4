"""manage.py up [--demo] [--port N]: everything `make run` and `make demo` do, in one command.

Prepares the database, static files, the admin user (and with --demo the demo source), picks a
broker (Redis if it answers, else a SQLite file), then runs web, worker and beat from the
Procfile under honcho until Ctrl-C. With --demo, `demo_feed --wait` posts sample events once
the web server answers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from agents_project.broker import choose_broker_url, redact_url
from agents_project.prometheus import DIRECTORY, reset

HOST = "127.0.0.1"
# Exit codes honcho uses when it was stopped by SIGINT or SIGTERM (or a child was).
STOPPED_CODES = {0, 130, 143, -signal.SIGINT, -signal.SIGTERM}


def default_port() -> int:
    raw = os.environ.get("PORT", "").strip()
    if not raw:
        return 8000
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"PORT={raw!r} is not a port number") from None


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def describe_database() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"SQLite file {db['NAME']}"
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"{db['ENGINE'].rsplit('.', 1)[-1]} database {db['NAME']!r} on {host}{port}"


class Command(BaseCommand):
    help = (
        "Migrate, collect static files, ensure the admin user, pick a broker, then run web, "
        "worker and beat (honcho + Procfile) until Ctrl-C. --demo adds the demo source and "
        "sample events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="demo source and sample events")
        parser.add_argument(
            "--port", type=int, default=None, help="web port on 127.0.0.1 (default: $PORT or 8000)"
        )
        parser.add_argument(
            "--procfile",
            default=str(Path(settings.BASE_DIR) / "Procfile"),
            help="Procfile to run (default: the project's)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        port: int = opts["port"] if opts["port"] is not None else default_port()
        if not 0 < port < 65536:
            raise CommandError(f"--port {port} is not a port number")
        procfile = Path(opts["procfile"]).resolve()
        if not procfile.is_file():
            raise CommandError(f"no Procfile at {procfile}")
        inner_verbosity = max(0, opts["verbosity"] - 1)

        self.step(f"checking that {HOST}:{port} is free")
        if port_in_use(port):
            raise CommandError(
                f"something already listens on {HOST}:{port}. Stop it, or pick another port: "
                f"PORT={port + 1} make {'demo' if opts['demo'] else 'run'}"
            )
        base_url = os.environ.get("SWITCHYARD_PUBLIC_URL") or f"http://{HOST}:{port}"

        broker_url = self.choose_broker()

        self.step(f"migrating the database ({describe_database()})")
        call_command("migrate", interactive=False, verbosity=inner_verbosity)
        self.step(f"collecting static files into {settings.STATIC_ROOT}")
        call_command("collectstatic", interactive=False, verbosity=inner_verbosity)
        self.step("making sure the admin user exists")
        call_command("ensure_admin", base_url=base_url, stdout=self.stdout)
        if opts["demo"]:
            self.step("setting up the demo source")
            call_command("demo_setup", base_url=base_url, stdout=self.stdout)
        self.step("making sure every handler subscription has a route")
        call_command("sync_routes", stdout=self.stdout, stderr=self.stderr)
        # The processes started below open their own connections; hold no SQLite locks.
        connections.close_all()

        env = self.child_environment(broker_url=broker_url, port=port, base_url=base_url)
        feed: subprocess.Popen[bytes] | None = None
        try:
            if opts["demo"]:
                self.step("demo feed: sample events go out once the web server answers")
                feed = subprocess.Popen(
                    [
                        sys.executable,
                        str(Path(settings.BASE_DIR) / "manage.py"),
                        "demo_feed",
                        "--wait",
                        "--port",
                        str(port),
                    ],
                    env=env,
                    start_new_session=True,
                )
            self.step(
                f"starting web ({base_url}), worker and beat from {procfile.name}; "
                "Ctrl-C stops them"
            )
            self.stdout.flush()
            reset(DIRECTORY)  # counts start from zero with the processes that keep them
            code = self.run_honcho(procfile, port, env)
        finally:
            if feed is not None and feed.poll() is None:
                feed.terminate()
                feed.wait(timeout=10)
        if code not in STOPPED_CODES:
            raise CommandError(f"honcho exited with status {code}; see the output above")
        self.step("stopped")

    def step(self, message: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"==> {message}"))

    def choose_broker(self) -> str:
        explicit = os.environ.get("CELERY_BROKER_URL")
        if explicit:
            self.step(f"broker: {redact_url(explicit)} (CELERY_BROKER_URL from the environment)")
            return explicit
        self.step(f"checking for Redis at {redact_url(settings.REDIS_URL)}")
        url, description = choose_broker_url(settings.REDIS_URL)
        style = self.style.SUCCESS if url == settings.REDIS_URL else self.style.WARNING
        self.stdout.write(style(f"==> broker: {description}"))
        return url

    @staticmethod
    def child_environment(*, broker_url: str, port: int, base_url: str) -> dict[str, str]:
        env = dict(os.environ)
        # gunicorn and celery are installed next to this interpreter (the virtualenv), which
        # need not be on PATH when `make` runs .venv/bin/python directly.
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")]).rstrip(os.pathsep)
        env["CELERY_BROKER_URL"] = broker_url
        env["PORT"] = str(port)
        env["SWITCHYARD_PUBLIC_URL"] = base_url
        env["PYTHONUNBUFFERED"] = "1"
        # One metrics directory for web and worker (/metrics sums them); handle() empties it.
        env["PROMETHEUS_MULTIPROC_DIR"] = str(DIRECTORY)
        return env

    def run_honcho(self, procfile: Path, port: int, env: dict[str, str]) -> int:
        """Run honcho in its own session and forward Ctrl-C / SIGTERM / SIGHUP to it.

        honcho then stops web, worker and beat (each in its own process group) and exits.
        Its own session means a terminal Ctrl-C reaches it exactly once, through us.
        """
        honcho = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "honcho",
                "start",
                "--procfile",
                str(procfile),
                "--app-root",
                str(procfile.parent),
                # honcho numbers ports per process type from this base; web comes first.
                "--port",
                str(port),
            ],
            env=env,
            start_new_session=True,
        )

        def forward(signum: int, frame: FrameType | None) -> None:
            if honcho.poll() is None:
                honcho.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

        previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, forward)
        try:
            return honcho.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
