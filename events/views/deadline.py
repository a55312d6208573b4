"""A deadline for reading a request's body, so a client that trickles it cannot hold a web
thread for longer than ``SWITCHYARD_BODY_READ_SECONDS``.

gunicorn's gthread workers read the headers without tying up a thread, but the body is read
by the view, in a worker thread, from a blocking socket. One watchdog thread per process keeps
the deadlines of the bodies being read; when one passes, it shuts the socket's read side, so
the read in progress returns what it has, and the view answers 408. Nothing is started per
request: registering a deadline is a heap push under a lock.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Read:
    """One body being read: the socket to cut, and whether it was cut."""

    sock: socket.socket
    cut: threading.Event = field(default_factory=threading.Event)
    done: bool = False


class Watchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Read]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, sock: socket.socket, seconds: float) -> Read:
        read = Read(sock)
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), read))
            if self._thread is None or not self._thread.is_alive():
                # Started on first use, so a forked worker gets its own.
                self._thread = threading.Thread(target=self._run, name="body-deadline", daemon=True)
                self._thread.start()
            self._wake.notify()
        return read

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                due, _, read = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                read.cut.set()
                with contextlib.suppress(OSError):  # closed meanwhile
                    read.sock.shutdown(socket.SHUT_RD)


WATCHDOG = Watchdog()


@contextmanager
def body_deadline(meta: dict[str, Any], seconds: float) -> Iterator[threading.Event | None]:
    """Within the block, the request's socket (gunicorn's, if the server is gunicorn) is cut
    ``seconds`` from now; yields the Event that says whether it was. Without a socket of
    gunicorn's (the test server) or with ``seconds`` <= 0, no deadline."""
    sock = meta.get("gunicorn.socket")
    if sock is None or seconds <= 0:
        yield None
        return
    read = WATCHDOG.add(sock, seconds)
    try:
        yield read.cut
    finally:
        read.done = True
