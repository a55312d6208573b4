"""The publish API: POST /api/events and GET /api/events/<id>, with bearer tokens."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ..models import Event, Source
from ..publish import PublishError
from ..tokens import authenticate
from ..webhooks.base import Rejection, envelope, media_type, parse_json_object
from .common import accepted, error, method_not_allowed, publish_incoming, read_body

log = logging.getLogger("switchyard.ingest")

API_SOURCE = "api"


def _api_source(slug: str | None) -> Source:
    if slug is None:
        source, _ = Source.objects.get_or_create(
            slug=API_SOURCE, defaults={"kind": "api", "description": "The publish API"}
        )
        if not source.enabled:
            raise Rejection(400, "the api source is disabled")
        return source
    if not isinstance(slug, str):
        raise Rejection(400, "source must be a string")
    named = Source.objects.filter(slug=slug, enabled=True).first()
    if named is None:
        raise Rejection(400, f"source {slug!r} does not exist or is disabled")
    if named.kind != "api":
        # A token must not stand in for a webhook sender's signature.
        raise Rejection(
            400, f"source {slug!r} is a {named.kind} source; only api sources take API events"
        )
    return named


@csrf_exempt
def events(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return method_not_allowed("POST")
    if authenticate(request.headers.get("Authorization")) is None:
        return error(401, "missing or invalid bearer token")
    try:
        body = read_body(request)
        if media_type(request.content_type or "") not in {"application/json", ""}:
            raise Rejection(415, "content type must be application/json")
        document = parse_json_object(body)
        incoming = envelope(document, checked=True)
        # One transaction: the "api" source made on first use is not kept if publish() refuses.
        with transaction.atomic():
            source = _api_source(document.get("source"))
            result = publish_incoming(source, incoming)
    except Rejection as exc:
        log.info("rejected API publish: %s %s", exc.status, exc.message)
        return error(exc.status, exc.message)
    except PublishError as exc:
        log.info("rejected API publish: 400 %s", exc)
        return error(400, str(exc))
    return accepted(result)


def event_document(event: Event) -> dict[str, Any]:
    deliveries = []
    for d in event.deliveries.order_by("handler"):
        item: dict[str, Any] = {
            "handler": d.handler,
            "status": d.status,
            "attempts": d.total_attempts,
            "next_attempt_at": d.next_attempt_at.isoformat() if d.status == "retrying" else None,
        }
        if d.status == "succeeded":
            item["outcome"] = d.outcome
        elif d.last_error:
            item["error_class"] = d.error_class
            item["last_error"] = d.last_error
        deliveries.append(item)
    return {
        "id": str(event.id),
        "source": event.source.slug,
        "type": event.type,
        "external_id": event.external_id,
        "partition_key": event.partition_key,
        "schema_version": event.schema_version,
        "status": event.status,
        "received_at": event.received_at.isoformat(),
        "payload": event.payload,
        "deliveries": deliveries,
    }


@csrf_exempt  # token-authenticated; without this a POST gets the CSRF page, not JSON
def event_detail(request: HttpRequest, event_id: str) -> JsonResponse:
    if request.method != "GET":
        return method_not_allowed("GET")
    if authenticate(request.headers.get("Authorization")) is None:
        return error(401, "missing or invalid bearer token")
    try:
        parsed = uuid.UUID(event_id)
    except ValueError:
        return error(404, "no such event")
    event = Event.objects.select_related("source").filter(id=parsed).first()
    if event is None:
        return error(404, "no such event")
    return JsonResponse(event_document(event))
