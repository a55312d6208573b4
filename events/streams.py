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

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from .models import Delivery, DeliveryStatus, Event, Source
from .publish import PublishError, check_fields, check_payload, publish
from .status import refresh_event_status
from .system_handlers import REJECTED_HANDLER, REJECTED_TYPE

log = logging.getLogger("switchyard.streams")

# What a rejected entry keeps of its raw fields: enough to see what was wrong and replay it.
MAX_RAW_FIELDS = 50
MAX_RAW_CHARS = 2000
# Entries whose last error we remember, for the reason given when they are finally rejected.
MAX_REMEMBERED_ERRORS = 1000
# Longest pause after Redis or the database stops answering; pauses double up to it.
MAX_PAUSE = 30.0


@dataclass(frozen=True)
class StreamOptions:
    stream: str
    group: str
    consumer: str
    type_field: str = "type"
    id_field: str = "id"
    payload_field: str = "payload"
    claim_idle_ms: int = 60_000
    max_deliveries: int = 5
    batch: int = 10
    block_ms: int = 1000
    # Where a group created by the consumer starts: "$" (entries added from now on) or "0".
    start_id: str = "$"


@dataclass(frozen=True)
class Parsed:
    type: str
    payload: dict[str, Any]
    external_id: str


@dataclass(frozen=True)
class Malformed:
    reason: str


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


def entry_external_id(stream: str, entry_id: str) -> str:
    """The dedupe key of an entry without an id field: the stream and its entry id."""
    return f"{stream}/{entry_id}"


def _printable(raw: bytes, limit: int = MAX_RAW_CHARS) -> str:
    """Raw bytes as text PostgreSQL can store: invalid UTF-8 and NUL escaped, long values cut."""
    # Cut the bytes first: a huge value is not decoded whole just to be cut.
    text = raw[: limit * 4].decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
    if len(text) > limit or len(raw) > limit * 4:
        return f"{text[:limit]}... (cut, {len(raw)} bytes in all)"
    return text


def raw_fields(fields: Mapping[bytes, bytes]) -> dict[str, str]:
    items = list(fields.items())
    kept = {_printable(k, 200): _printable(v) for k, v in items[:MAX_RAW_FIELDS]}
    if len(items) > MAX_RAW_FIELDS:
        kept["..."] = f"{len(items) - MAX_RAW_FIELDS} more fields not kept"
    return kept


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_entry(
    options: StreamOptions, entry_id: str, fields: Mapping[bytes, bytes]
) -> Parsed | Malformed:
    """Turn an entry's fields into publish()'s arguments, or say why they cannot be.

    The payload is the JSON object in the payload field; an entry without one has all its
    other fields (but the type and id fields) as the payload, as strings. An entry larger than
    a webhook body may be (SWITCHYARD_MAX_BODY_BYTES) is refused like a malformed one.
    """
    size = sum(len(name) + len(value) for name, value in fields.items())
    limit = int(settings.SWITCHYARD_MAX_BODY_BYTES)
    if size > limit:
        return Malformed(f"entry is {size} bytes; the limit is {limit} (SWITCHYARD_MAX_BODY_BYTES)")
    text: dict[str, str] = {}
    for raw_name, raw_value in fields.items():
        try:
            text[raw_name.decode("utf-8")] = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            return Malformed(f"field {_printable(raw_name, 200)!r} is not valid UTF-8")
    type_ = text.get(options.type_field)
    if type_ is None:
        return Malformed(f"no {options.type_field!r} field")
    external_id = text.get(options.id_field)
    try:
        check_fields(type_, None, None, 1)
    except PublishError as exc:
        return Malformed(f"field {options.type_field!r}: {exc}")
    if external_id is not None:
        try:
            check_fields(type_, external_id, None, 1)
        except PublishError as exc:
            return Malformed(f"field {options.id_field!r}: {exc}")
    if options.payload_field in text:
        name = options.payload_field
        try:
            payload = json.loads(text[name], parse_constant=_refuse_constant)
        except RecursionError:
            return Malformed(f"field {name!r} is nested too deeply")
        except ValueError as exc:
            return Malformed(f"field {name!r} is not valid JSON: {exc}")
        if not isinstance(payload, dict):
            return Malformed(f"field {name!r} is not a JSON object")
    else:
        payload = {k: v for k, v in text.items() if k not in (options.type_field, options.id_field)}
    try:
        check_payload(payload)
    except PublishError as exc:
        return Malformed(str(exc))
    return Parsed(
        type=type_,
        payload=payload,
        external_id=external_id or entry_external_id(options.stream, entry_id),
    )


def store_rejected(
    source: Source,
    options: StreamOptions,
    entry_id: str,
    fields: Mapping[bytes, bytes],
    reason: str,
    error_class: str,
) -> bool:
    """Store an entry that cannot be published as a dead letter. False if already stored.

    A ``stream.rejected`` event (never routed) with one delivery to the ``stream.rejected``
    handler, dead-lettered from the start, in one transaction: the admin lists it with the
    other dead letters, and a requeue runs the handler, which fails again with the reason.
    """
    payload = {
        "stream": options.stream,
        "group": options.group,
        "entry_id": entry_id,
        "fields": raw_fields(fields),
        "reason": reason,
    }
    with transaction.atomic():
        result = publish(
            source=source,
            type=REJECTED_TYPE,
            payload=payload,
            external_id=entry_external_id(options.stream, entry_id),
            ignored=True,
        )
        if not result.created:
            return False
        now = timezone.now()
        Delivery.objects.create(
            event=result.event,
            route=None,
            handler=REJECTED_HANDLER,
            status=DeliveryStatus.DEAD_LETTERED,
            next_attempt_at=now,
            created_at=now,
            finished_at=now,
            error_class=error_class,
            last_error=reason,
        )
        refresh_event_status(result.event.id)
    log.warning("stream %s entry %s dead-lettered: %s", options.stream, entry_id, reason)
    return True


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
