"""A redis-server of our own on a loopback port, for the tests and the benchmarks.

Private, so tests may flush or restart it without touching anybody's data: no persistence,
``noeviction`` like production.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis


class ServiceError(RuntimeError):
    """The server could not be started or did not answer."""


class RedisServer:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)

    def start(self, *, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError(
                "redis-server is not installed (scripts/ensure-services installs it)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--maxmemory-policy", "noeviction",
                "--dir", str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._answers():
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"redis-server on port {self.port} did not answer in {timeout} s"
                )
            time.sleep(0.05)

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise ServiceError(f"redis-server exited with {self.process.returncode}")
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def version(self) -> str:
        return str(self.client().info("server").get("redis_version", "unknown"))

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
