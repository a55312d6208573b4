"""The request log: every refused webhook and API request, kept ``SWITCHYARD_REQUEST_LOG_DAYS``
(7) so an operator can see why a sender's request did not become an event.

What is kept: when, the endpoint, the slug asked for and its source if it exists, the answer's
status and reason, the method and path (no query string), the headers with secrets removed
(any header whose name speaks of a signature, token, key, secret, cookie or authorization is
replaced whole; known secret values anywhere are replaced), the body's size (never the body)
and the client's address. At most ``SWITCHYARD_REQUEST_LOG_PER_MINUTE`` (600) are recorded a
minute, counted in Redis, so a flood of bad requests cannot flood the database; recording
never changes the answer (a database or Redis error is logged and the request answered as
before). The sweeper deletes what is older than the retention.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

import redis
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone

from . import conf
from .models import RejectedRequest, Source
from .ratelimit import client_address, redis_client
from .redaction import REDACTED, Sanitiser, secret_values

log = logging.getLogger("switchyard.ingest")

SECRET_HEADER = re.compile(r"signature|token|key|secret|cookie|authori[sz]ation", re.I)
MAX_HEADERS = 50
MAX_HEADER_CHARS = 500
PRUNE_BATCH = 1000


def record(
    request: HttpRequest,
    *,
    endpoint: str,
    status: int,
    reason: str,
    slug: str = "",
    source: Source | None = None,
    body_bytes: int = 0,
) -> None:
    """Keep one refused request (see the module docstring); never raises."""
    if not _under_cap():
        return
    clean = Sanitiser(secret_values(source.secrets if source is not None else ()))
    headers = {
        name: REDACTED if SECRET_HEADER.search(name) else clean.text(value)[:MAX_HEADER_CHARS]
        for name, value in list(request.headers.items())[:MAX_HEADERS]
    }
    try:
        RejectedRequest.objects.create(
            endpoint=endpoint,
            slug=clean.text(slug)[:64],
            source=source,
            status=status,
            reason=clean.text(reason)[:500],
            method=(request.method or "")[:10],
            path=clean.text(request.path)[:300],
            headers=headers,
            body_bytes=body_bytes,
            client=client_address(request.META)[:64],
        )
    except DatabaseError as exc:
        log.warning("a refused request was not recorded: %s", exc)


def _under_cap() -> bool:
    cap = int(conf.REQUEST_LOG_PER_MINUTE.get())
    if cap <= 0:
        return False
    key = f"switchyard:request-log:{int(time.time() // 60)}"
    try:
        pipe = redis_client(str(settings.REDIS_URL)).pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        count = int(pipe.execute()[0])
    except (redis.RedisError, OSError):
        return True  # no count without Redis: record rather than lose the answer to "why"
    return count <= cap


def prune() -> int:
    """Delete up to PRUNE_BATCH rows older than the retention; the sweeper calls this."""
    cutoff = timezone.now() - timedelta(days=float(conf.REQUEST_LOG_DAYS.get()))
    old = list(
        RejectedRequest.objects.filter(received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("id", flat=True)[:PRUNE_BATCH]
    )
    if not old:
        return 0
    return int(RejectedRequest.objects.filter(id__in=old).delete()[0])
