"""POST /hooks/<slug>: verify, store, enqueue, answer. Nothing else happens here."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ..models import Source
from ..publish import PublishError, publish
from ..webhooks import get_kind
from ..webhooks.base import Rejection
from .common import answer, error, read_body

log = logging.getLogger("switchyard.ingest")


@csrf_exempt
def receive(request: HttpRequest, slug: str) -> JsonResponse:
    if request.method != "POST":
        return error(405, "use POST")
    try:
        body = read_body(request)
        source = Source.objects.filter(slug=slug, enabled=True).first()
        kind = get_kind(source.kind) if source is not None else None
        if source is None or kind is None:
            raise Rejection(404, f"no webhook source {slug!r}")
        incoming = kind.parse(
            request.headers, body, list(source.secrets or []), request.content_type or ""
        )
        result = publish(
            source=source,
            type=incoming.type,
            payload=incoming.payload,
            external_id=incoming.external_id,
            partition_key=incoming.partition_key,
            schema_version=incoming.schema_version,
        )
    except Rejection as exc:
        log.info("rejected webhook for %r: %s %s", slug, exc.status, exc.message)
        return error(exc.status, exc.message)
    except PublishError as exc:
        log.info("rejected webhook for %r: 400 %s", slug, exc)
        return error(400, str(exc))
    if not result.created:
        return answer(200, id=str(result.event.id), duplicate=True)
    return answer(
        202, id=str(result.event.id), status=result.event.status, deliveries=result.deliveries
    )
