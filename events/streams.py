"""Redis Streams into publish(): the consumer behind ``manage.py consume_stream``.

Entries are read with a consumer group, so several consumers share one stream and Redis keeps
every entry a consumer was given in the group's pending list until it is acknowledged. An entry
is acknowledged (XACK) only after publish() has committed its event: a consumer that dies
between the two leaves it pending, another consumer takes it over with XAUTOCLAIM once it has
been idle for ``claim_idle_ms``, and publish() dedupes the second copy on its external id.

An entry that cannot become an event (bad JSON, no type, ...) must not block the stream, and
must not vanish either: it is stored as a ``stream.rejected`` event holding the raw fields and
the reason, with one delivery already dead-lettered (events/system_handlers.py), and then
acknowledged. The same happens to an entry Redis has handed out more than ``max_deliveries``
times without it being stored (a database error for that entry alone, or a consumer that keeps
dying on it).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from django.db import DatabaseError, close_old_connections, connection

from .models import Event, Source
from .publish import PublishError, publish
from .stream_entries import (
    Malformed,
    Parsed,
    StreamOptions,
    entry_external_id,
    parse_entry,
    store_rejected,
)

log = logging.getLogger("switchyard.streams")

# Entries whose last error we remember, for the reason given when they are finally rejected.
MAX_REMEMBERED_ERRORS = 1000
# Longest pause after Redis or the database stops answering; pauses double up to it.
MAX_PAUSE = 30.0


@dataclass
class Counts:
    published: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    # Not stored this time (a database error): left pending, retried after the claim idle time.
    failed: int = 0
    claimed: int = 0

    def __str__(self) -> str:
        return (
            f"published {self.published}, duplicates {self.duplicates}, "
            f"dead-lettered {self.dead_lettered}, failed (left pending) {self.failed}, "
            f"claimed from idle consumers {self.claimed}"
        )


def database_answers() -> bool:
    """Whether a fresh connection can run a query: tells an outage from a bad entry."""
    connection.close()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        connection.close()
        return False
    return True


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]


class StreamConsumer:
    """One consumer of one group. ``run()`` loops until ``stop()`` (called from a signal
    handler: it only sets a flag, and the loop finishes the entry in hand first)."""

    def __init__(self, client: redis.Redis, source: Source, options: StreamOptions) -> None:
        self.client = client
        self.source = source
        self.options = options
        self.counts = Counts()
        self.stopping = False
        self._last_errors: OrderedDict[str, str] = OrderedDict()
        self._claim_cursor = "0-0"
        self._next_claim_at = 0.0

    def stop(self) -> None:
        self.stopping = True

    def ensure_group(self) -> bool:
        """Create the group (and the stream) if missing. True if it was created."""
        o = self.options
        try:
            self.client.xgroup_create(o.stream, o.group, id=o.start_id, mkstream=True)
        except redis.ResponseError as exc:
            if str(exc).startswith("BUSYGROUP"):
                return False
            raise
        log.info("created group %s on stream %s at %s", o.group, o.stream, o.start_id)
        return True

    def run(
        self, *, on_progress: Callable[[Counts], None] | None = None, every: float = 60.0
    ) -> Counts:
        pause = 1.0
        next_progress = time.monotonic() + every
        while not self.stopping:
            try:
                self.step()
                pause = 1.0
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("redis: %s; trying again in %.0f s", _first_line(exc), pause)
                self._sleep(pause)
                pause = min(pause * 2, MAX_PAUSE)
            except redis.ResponseError as exc:
                if not str(exc).startswith("NOGROUP"):
                    raise
                # The stream or the group was deleted under us: start again from a new group.
                log.warning("group %s is gone (%s); creating it again", self.options.group, exc)
                self.ensure_group()
            if on_progress is not None and time.monotonic() >= next_progress:
                on_progress(self.counts)
                next_progress = time.monotonic() + every
        return self.counts

    def step(self) -> None:
        """Take over idle entries when a claim is due, then read new ones (waiting up to
        ``block_ms`` for them), and handle each in order."""
        close_old_connections()
        o = self.options
        if time.monotonic() >= self._next_claim_at:
            for entry_id, fields, deliveries in self.claim_idle():
                if self.stopping:
                    return
                self.handle(entry_id, fields, deliveries)
        if self.stopping:
            return
        reply: Any = self.client.xreadgroup(
            o.group, o.consumer, {o.stream: ">"}, count=o.batch, block=o.block_ms
        )
        for _stream, entries in reply or []:
            for raw_id, fields in entries:
                if self.stopping:
                    return
                self.handle(raw_id.decode(), fields, 1)

    def claim_idle(self) -> list[tuple[str, dict[bytes, bytes], int]]:
        """XAUTOCLAIM entries idle longer than ``claim_idle_ms`` (their consumer died, or they
        failed here), with how often each has now been delivered (XPENDING)."""
        o = self.options
        reply: Any = self.client.xautoclaim(
            o.stream,
            o.group,
            o.consumer,
            o.claim_idle_ms,
            start_id=self._claim_cursor,
            count=o.batch,
        )
        cursor, entries = reply[0], reply[1]
        deleted = reply[2] if len(reply) > 2 else []
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if self._claim_cursor == "0-0":
            # A full pass over the pending list: look again in a while, not on every read.
            self._next_claim_at = time.monotonic() + min(1.0, o.claim_idle_ms / 1000)
        if deleted:
            log.warning(
                "%d pending entries of %s were deleted from the stream before being consumed",
                len(deleted),
                o.stream,
            )
        claimed = []
        for raw_id, fields in entries:
            if raw_id is None or fields is None:
                continue  # deleted from the stream (Redis 6.2 answers nil for those)
            entry_id = raw_id.decode()
            pending: Any = self.client.xpending_range(
                o.stream, o.group, entry_id, entry_id, 1, consumername=o.consumer
            )
            if pending:
                claimed.append((entry_id, fields, int(pending[0]["times_delivered"])))
        if claimed:
            self.counts.claimed += len(claimed)
            log.info("claimed %d idle entries of %s", len(claimed), o.stream)
        return claimed

    def handle(self, entry_id: str, fields: dict[bytes, bytes], deliveries: int) -> None:
        """Publish one entry (or dead-letter it), then acknowledge it. A database error leaves
        it unacknowledged: it is claimed again after the idle time and tried again."""
        o = self.options
        try:
            if deliveries > o.max_deliveries:
                # Not even parsed: it may be what made a consumer die.
                self._give_up(entry_id, fields, deliveries)
            else:
                parsed = parse_entry(o, entry_id, fields)
                if isinstance(parsed, Malformed):
                    self._reject(entry_id, fields, parsed.reason, "MalformedEntry")
                else:
                    self._publish(entry_id, fields, parsed)
        except DatabaseError as exc:
            self.counts.failed += 1
            self._remember(entry_id, _first_line(exc))
            log.warning(
                "stream %s entry %s not stored (delivery %d of %d): %s",
                o.stream,
                entry_id,
                deliveries,
                o.max_deliveries,
                _first_line(exc),
            )
            self._wait_for_database()
            return
        self.client.xack(o.stream, o.group, entry_id)
        self._last_errors.pop(entry_id, None)

    def _publish(self, entry_id: str, fields: Mapping[bytes, bytes], parsed: Parsed) -> None:
        try:
            result = publish(
                source=self.source,
                type=parsed.type,
                payload=parsed.payload,
                external_id=parsed.external_id,
            )
        except PublishError as exc:  # parse_entry checks the same rules; publish() decides
            self._reject(entry_id, fields, str(exc), "MalformedEntry")
            return
        if result.created:
            self.counts.published += 1
        else:
            self.counts.duplicates += 1

    def _give_up(self, entry_id: str, fields: Mapping[bytes, bytes], n: int) -> None:
        # Stored after all (a consumer died between commit and XACK): only the ack is owed.
        raw_id = fields.get(self.options.id_field.encode())
        external_id = (
            raw_id.decode("utf-8", errors="replace")
            if raw_id
            else entry_external_id(self.options.stream, entry_id)
        )
        if Event.objects.filter(source=self.source, external_id=external_id).exists():
            self.counts.duplicates += 1
            return
        reason = (
            f"delivered {n} times without being stored (--max-deliveries "
            f"{self.options.max_deliveries}); last error: "
            f"{self._last_errors.get(entry_id, 'unknown (a consumer stopped while handling it)')}"
        )
        self._reject(entry_id, fields, reason, "TooManyDeliveries")

    def _reject(
        self, entry_id: str, fields: Mapping[bytes, bytes], reason: str, error_class: str
    ) -> None:
        if store_rejected(self.source, self.options, entry_id, fields, reason, error_class):
            self.counts.dead_lettered += 1
        else:
            self.counts.duplicates += 1

    def _remember(self, entry_id: str, error: str) -> None:
        self._last_errors[entry_id] = error
        self._last_errors.move_to_end(entry_id)
        while len(self._last_errors) > MAX_REMEMBERED_ERRORS:
            self._last_errors.popitem(last=False)

    def _wait_for_database(self) -> None:
        """After a database error: if the database does not answer at all, wait for it (an
        outage is not the entry's fault, and reading on would only fail more entries)."""
        pause = 1.0
        while not self.stopping and not database_answers():
            log.warning("database unavailable; consuming paused, next check in %.0f s", pause)
            self._sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)

    def _sleep(self, seconds: float) -> None:
        """Sleep in short slices so a stop request is seen within a tenth of a second."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))
