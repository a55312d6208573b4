"""publish(): the one way into the system. Every entry point calls it.

It stores the event and one Delivery per matching route in a single transaction, and enqueues
the deliveries only after that transaction commits. A second publish with the same
(source, external_id) stores nothing and returns the first event.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import dispatch, fanout
from .metrics import EVENTS
from .models import Delivery, Event, EventStatus, Replay, Source
from .routing import matching_routes

log = logging.getLogger("switchyard.pipeline")

TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,199}$")
MAX_PAYLOAD_DEPTH = 64
INTERNAL_SOURCE = "switchyard"


class PublishError(ValueError):
    """Input that cannot become an event. The message says what is wrong, for a 400 answer."""


@dataclass(frozen=True)
class PublishResult:
    event: Event
    created: bool
    # The deliveries that will run; any refused over the fan-out cap are not counted.
    deliveries: int


NUL_MESSAGE = "contains a NUL character (\\u0000)"
SURROGATE_MESSAGE = "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"


def _text_problem(text: str) -> str | None:
    """Why PostgreSQL cannot store this string, if it cannot: a NUL, or a lone surrogate
    (JSON's "\\ud800" decodes to one, and it has no UTF-8 encoding)."""
    if "\x00" in text:
        return NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def check_payload(payload: Any) -> None:
    """Refuse what JSON or PostgreSQL cannot store faithfully: depth, NaN, NUL characters,
    lone surrogates."""
    if not isinstance(payload, dict):
        raise PublishError("payload must be a JSON object")
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            raise PublishError(f"payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise PublishError("payload keys must be strings")
                if problem := _text_problem(key):
                    raise PublishError(f"payload {problem}")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            if problem := _text_problem(value):
                raise PublishError(f"payload {problem}")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise PublishError("payload contains NaN or Infinity, which JSON does not allow")
        elif value is None or isinstance(value, bool | int):
            continue
        else:
            raise PublishError(f"payload holds a {type(value).__name__}, which is not JSON")


def check_fields(type: Any, external_id: Any, partition_key: Any, schema_version: Any) -> None:
    # fullmatch: with match(), "$" also matches before a trailing newline.
    if not isinstance(type, str) or not TYPE_RE.fullmatch(type):
        raise PublishError(
            "type must be 1-200 characters of letters, digits and . _ : / - "
            "(starting with a letter or digit)"
        )
    # PostgreSQL cannot store a NUL or a lone surrogate: refuse them here, not as a 500.
    if external_id is not None and (
        not isinstance(external_id, str)
        or not 0 < len(external_id) <= 255
        or _text_problem(external_id)
    ):
        raise PublishError(
            "id (external id) must be a string of 1-255 characters, without NUL or surrogates"
        )
    if partition_key is not None and (
        not isinstance(partition_key, str)
        or len(partition_key) > 255
        or _text_problem(partition_key)
    ):
        raise PublishError(
            "partition_key must be a string of at most 255 characters, without NUL or surrogates"
        )
    if (
        not isinstance(schema_version, int)
        or isinstance(schema_version, bool)
        or not 1 <= schema_version <= 32767
    ):
        raise PublishError("schema_version must be a whole number from 1 to 32767")


def internal_source() -> Source:
    source, _ = Source.objects.get_or_create(
        slug=INTERNAL_SOURCE,
        defaults={"kind": "internal", "description": "Follow-up events emitted by handlers"},
    )
    return source


def publish(
    *,
    source: Source,
    type: str,
    payload: dict[str, Any],
    external_id: str | None = None,
    partition_key: str | None = None,
    schema_version: int = 1,
    emitted_by: Delivery | None = None,
    replay_of: Event | None = None,
    replay: Replay | None = None,
    ignored: bool = False,
    payload_checked: bool = False,
) -> PublishResult:
    """Store the event and its deliveries; ``ignored`` stores it with none, as ``ignored``
    (kept for the record, never routed: a Slack message from our own bot). ``replay_of`` and
    ``replay``: the event is a replay's copy of that event (events.replay).
    ``payload_checked``: the caller has run check_payload() on this very payload already
    (the webhook kinds do while parsing), so it is not walked a second time."""
    check_fields(type, external_id, partition_key, schema_version)
    if not payload_checked:
        check_payload(payload)
    elif not isinstance(payload, dict):
        raise PublishError("payload must be a JSON object")
    now = timezone.now()
    # From the per-process memo (events/lookups.py): known before the INSERT, so an event
    # nothing routes is stored as ignored at once rather than updated after.
    routes = [] if ignored else matching_routes(type, payload, source=source, cached=True)
    # Past the source's cap (else SWITCHYARD_MAX_DELIVERIES_PER_EVENT), the rest are stored
    # refused (events.fanout).
    matched = len(routes)
    # A cap is at least 1: only an event matching several routes looks its source's up.
    cap = fanout.deliveries_cap(source) if matched > 1 else None
    routes, refused = fanout.split_routes(routes, cap)
    if not routes:
        status = EventStatus.IGNORED
    else:
        # A refused delivery is dead-lettered, so the event counts as started (events.status).
        status = EventStatus.PROCESSING if refused else EventStatus.RECEIVED
    try:
        # One transaction and no savepoint: a duplicate fails the event INSERT, the first
        # statement, so rolling the whole block back loses nothing (inside a caller's
        # transaction this block is the savepoint). Saves two round trips per event.
        with transaction.atomic():
            event = Event.objects.create(
                source=source,
                external_id=external_id or uuid.uuid4().hex,
                type=type,
                schema_version=schema_version,
                partition_key=partition_key or "",
                payload=payload,
                received_at=now,
                status_changed_at=now,
                emitted_by=emitted_by,
                # Follow-ups one deeper than their emitter's event (events.fanout).
                depth=emitted_by.event.depth + 1 if emitted_by is not None else 0,
                replay_of=replay_of,
                replay=replay,
                status=status,
            )
            deliveries = Delivery.objects.bulk_create(
                [
                    Delivery(
                        event=event,
                        route=route,
                        handler=route.handler,
                        next_attempt_at=now,
                        enqueued_at=now,
                        created_at=now,
                    )
                    for route in routes
                ]
                + fanout.refused_deliveries(event, refused, matched, cap, now)
            )
            jobs = [
                (d.id, route.queue, route.time_limit)
                for d, route in zip(deliveries[: len(routes)], routes, strict=True)
            ]
            if jobs:
                transaction.on_commit(lambda: dispatch.enqueue(jobs), robust=True)
    except IntegrityError:
        existing = Event.objects.filter(source=source, external_id=external_id).first()
        if existing is None:
            raise
        log.info("duplicate event %s from %s (external id %s)", existing.id, source, external_id)
        return PublishResult(event=existing, created=False, deliveries=0)
    log.info("event %s %s stored with %d deliveries", event.id, type, len(routes))
    if refused:
        log.warning(
            "event %s %s matched %d routes; %d refused over the cap (%s)",
            event.id,
            type,
            matched,
            len(refused),
            ", ".join(route.name for route in refused),
        )
    # Counted once stored: an enclosing transaction that later rolls back (a handler's
    # follow-ups when recording its success fails) leaves this count one too high.
    EVENTS.labels(source.slug, type).inc()
    return PublishResult(event=event, created=True, deliveries=len(routes))
