"""POST /hooks/<slug>: verify, store, enqueue, answer. Nothing else happens here."""

from __future__ import annotations

import logging
import re

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .. import ratelimit, replays, request_log
from ..lookups import Memo
from ..metrics import INGEST_SECONDS
from ..models import Source
from ..publish import PublishError
from ..webhooks import get_kind
from ..webhooks.base import Rejection, Reply, WebhookRequest
from .common import accepted, answer, error, method_not_allowed, read_body

log = logging.getLogger("switchyard.ingest")

# What a Source.slug can be. Checked before the lookup: PostgreSQL refuses a NUL in a query
# parameter, so "/hooks/%00" would otherwise be a 500 rather than a 404.
SLUG_RE = re.compile(r"[-a-zA-Z0-9_]{1,64}")

# Enabled sources by slug, kept a few seconds per process (events/lookups.py).
SOURCES: Memo[Source] = Memo()


def enabled_source(slug: str) -> Source | None:
    if not SLUG_RE.fullmatch(slug):
        return None
    return SOURCES.get(slug, lambda: Source.objects.filter(slug=slug, enabled=True).first())


@csrf_exempt
@INGEST_SECONDS.labels("hooks").time()
def receive(request: HttpRequest, slug: str) -> JsonResponse:
    if request.method != "POST":
        return method_not_allowed("POST")
    body, source = b"", None
    try:
        body = read_body(request)
        source = enabled_source(slug)
        kind = get_kind(source.kind) if source is not None else None
        if source is None or kind is None:
            raise Rejection(404, f"no webhook source {slug!r}")
        incoming = kind.parse(
            WebhookRequest(
                headers=request.headers,
                body=body,
                content_type=request.content_type or "",
                secrets=list(source.secrets or []),
                settings=source.settings if isinstance(source.settings, dict) else {},
            )
        )
        if isinstance(incoming, Reply):
            # Signed, and asking for an answer rather than storage (Slack's url_verification).
            return answer(incoming.status, **incoming.body)
        ratelimit.check(source.slug, ratelimit.limit_for(source.settings))
        result = replays.publish_once(source, incoming)
    except ratelimit.RateLimited as exc:
        log.warning("rate-limited webhook for %r: %s", slug, exc.message)
        refused(request, slug, source, body, exc.status, exc.message)
        response = error(exc.status, exc.message, retry_after=exc.retry_after)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except Rejection as exc:
        log.info("rejected webhook for %r: %s %s", slug, exc.status, exc.message)
        refused(request, slug, source, body, exc.status, exc.message)
        return error(exc.status, exc.message)
    except PublishError as exc:
        log.info("rejected webhook for %r: 400 %s", slug, exc)
        refused(request, slug, source, body, 400, str(exc))
        return error(400, str(exc))
    return accepted(result)


def refused(
    request: HttpRequest, slug: str, source: Source | None, body: bytes, status: int, why: str
) -> None:
    request_log.record(
        request,
        endpoint="hooks",
        status=status,
        reason=why,
        slug=slug[:64],
        source=source,
        body_bytes=len(body),
    )
