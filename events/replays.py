"""Requests without an id of their own, stored once within a window (the ``hmac`` kind without
a signed timestamp): the sliding-window check behind ``Incoming.replay_window``.

The event is stored with the external id ``body:<digest>:<n>``, ``n`` the window-sized slot
of time it arrived in. A copy is a duplicate if an event with the same digest in this slot or
the one before arrived less than the window ago; both ids are looked up on the (source,
external id) unique index, and two copies racing in one slot meet on that index, so sequential
replays are always caught. Two copies racing across a slot boundary may both be stored.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import timedelta

from django.utils import timezone

from .models import Event, Source
from .publish import PublishResult, publish
from .webhooks.base import Incoming

log = logging.getLogger("switchyard.ingest")

clock = time.time  # where the slots are counted from; tests move it


def publish_incoming(source: Source, incoming: Incoming) -> PublishResult:
    """publish() the event an incoming request carries."""
    return publish(
        source=source,
        type=incoming.type,
        payload=incoming.payload,
        external_id=incoming.external_id,
        partition_key=incoming.partition_key,
        schema_version=incoming.schema_version,
        ignored=incoming.ignored,
        payload_checked=incoming.payload_checked,
    )


def publish_once(source: Source, incoming: Incoming, *, now: float | None = None) -> PublishResult:
    """publish() the incoming event, unless it is a copy of one stored within its window."""
    digest, window = incoming.replay_digest, incoming.replay_window
    if incoming.external_id is not None or not digest or window <= 0:
        return publish_incoming(source, incoming)
    now = clock() if now is None else now
    slot = int(now // window)
    ids = [f"body:{digest[:40]}:{slot}", f"body:{digest[:40]}:{slot - 1}"]
    since = timezone.now() - timedelta(seconds=window)
    earlier = (
        Event.objects.filter(source=source, external_id__in=ids, received_at__gte=since)
        .order_by("received_at")
        .first()
    )
    if earlier is not None:
        log.info("replayed request to %s stored as event %s already", source, earlier.id)
        return PublishResult(event=earlier, created=False, deliveries=0)
    return publish_incoming(source, replace(incoming, external_id=ids[0]))
