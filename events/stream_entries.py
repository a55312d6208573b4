"""Redis Stream entries as events: parsing an entry's fields into a type, a payload and an
external id, and storing an entry that cannot become an event as a dead-lettered
``stream.rejected`` event (events.streams consumes the stream)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from events import conf

from .models import Delivery, DeliveryStatus, Source
from .publish import PublishError, check_fields, check_payload, publish
from .status import refresh_event_status
from .system_handlers import REJECTED_HANDLER, REJECTED_TYPE

log = logging.getLogger("switchyard.streams")

# What a rejected entry keeps of its raw fields: enough to see what was wrong and replay it.
MAX_RAW_FIELDS = 50
MAX_RAW_CHARS = 2000


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
    limit = int(conf.MAX_BODY_BYTES.get())
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
