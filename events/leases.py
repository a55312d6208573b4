"""The leases a worker process holds on its running deliveries, kept by one thread.

A running delivery's lease is short (``SWITCHYARD_LEASE_SECONDS``, 30 s by default) and says
nothing about the time limit: this process renews the leases of every attempt it runs, a
third of a lease apart, in one statement. A worker that dies stops renewing; within a lease its
deliveries are free to be taken over (events.transitions).

The time limit is enforced on its own. Under the prefork pool Celery's soft and hard limits
stop the handler; under the threads and gevent pools nothing can stop a thread, so an attempt
still running ``FENCE_MARGIN`` seconds past its limit is fenced here: recorded as failed with
``TimeLimitExceeded`` (retried or dead-lettered as any failure), its lease given up, and its
late result dropped by the conditional update that would record it.

Each lease names its holder process (events.holders), so a worker on the same machine can take
over at once the deliveries of a holder that has exited.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, connection

from agents_project.db import release_connections
from events import conf
from handlers.errors import TimeLimitExceeded

from . import dispatch
from .holders import holder
from .transitions import Claim, fail
from .transitions import renew as renew_leases

log = logging.getLogger("switchyard.pipeline")

# Seconds past its time limit an attempt may run before it is fenced: the margin the prefork
# pool's hard limit gives too (events.dispatch).
FENCE_MARGIN = dispatch.HARD_LIMIT_MARGIN
# How often the keeper looks for attempts to fence (it renews leases a third of a lease apart).
FENCE_CHECK_SECONDS = 1.0


@dataclass
class Held:
    claim: Claim
    deadline: float  # time.monotonic() when the time limit runs out
    started: datetime


class Keeper:
    """The running attempts of this process, their leases renewed by one daemon thread."""

    def __init__(self) -> None:
        self._held: dict[int, Held] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def hold(self, claimed: Claim, deadline: float, started: datetime) -> None:
        with self._lock:
            if self._pid != os.getpid():  # forked (a prefork child): start afresh
                self._held, self._thread, self._pid = {}, None, os.getpid()
            self._held[claimed.delivery.id] = Held(claimed, deadline, started)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="switchyard-leases", daemon=True
                )
                self._thread.start()

    def release(self, delivery_id: int) -> None:
        with self._lock:
            self._held.pop(delivery_id, None)

    def held(self) -> list[int]:
        with self._lock:
            return list(self._held)

    def _run(self) -> None:
        renewed = time.monotonic()
        while True:
            time.sleep(FENCE_CHECK_SECONDS)
            now = time.monotonic()
            renew = now - renewed >= conf.LEASE_SECONDS.get() / 3
            try:
                self.beat(renew=renew)
            except Exception:
                log.exception("renewing leases failed; trying again at the next beat")
                connection.close()
            finally:
                release_connections()
            if renew:
                renewed = now

    def beat(self, *, renew: bool = True) -> None:
        """Fence the attempts past their time limit; if ``renew``, renew the others' leases."""
        now = time.monotonic()
        with self._lock:
            overrun = [h for h in self._held.values() if now > h.deadline + FENCE_MARGIN]
            for h in overrun:
                del self._held[h.claim.delivery.id]
            running = [(h.claim.delivery.id, h.claim.number) for h in self._held.values()]
        for h in overrun:
            self._fence(h, now)
        if not (renew and running):
            return
        renewed = renew_leases(running, holder())
        for delivery_id, number in running:
            if delivery_id not in renewed:
                log.warning(
                    "delivery %s attempt %s: lease not renewed (finished, or taken over)",
                    delivery_id,
                    number,
                )

    def _fence(self, h: Held, now: float) -> None:
        claimed = h.claim
        over = now - h.deadline
        exc = TimeLimitExceeded(
            f"still running {over:.0f} s past its time limit of {claimed.route.time_limit} s; "
            "fenced (a late result is dropped)"
        )
        try:
            outcome = fail(claimed, exc, "", h.started)
        except DatabaseError:
            log.exception("fencing delivery %s failed; its lease will lapse", claimed.delivery.id)
            connection.close()
            return
        log.warning(
            "delivery %s (%s) attempt %s fenced %.0f s past its time limit: %s",
            claimed.delivery.id,
            claimed.delivery.handler,
            claimed.number,
            over,
            outcome.status,
        )
        if outcome.retry_in is not None:
            dispatch.send_delivery(
                outcome.delivery_id,
                queue=outcome.queue,
                time_limit=outcome.time_limit,
                countdown=outcome.retry_in,
            )


keeper = Keeper()
