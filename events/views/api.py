"""The publish API: POST /api/events and GET /api/events/<id>, with bearer tokens."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .. import ratelimit, request_log
from ..metrics import INGEST_SECONDS
from ..models import ApiToken, Event, Source
from ..publish import PublishError
from ..replays import publish_incoming
from ..tokens import authenticate
from ..webhooks.base import Rejection, envelope, media_type, parse_json_object
from .common import accepted, error, method_not_allowed, read_body

log = logging.getLogger("switchyard.ingest")

API_SOURCE = "api"


def _api_source(slug: Any, token: ApiToken) -> Source:
    """The api source an API event goes into, if this token may publish into it."""
    if slug is not None and not isinstance(slug, str):
        raise Rejection(400, "source must be a string")
    if not token.covers(slug or API_SOURCE):
        # Said before looking the source up: whether it exists is none of this token's business.
        raise Rejection(403, f"this token may not publish into source {slug or API_SOURCE!r}")
    if slug is None:
        source, _ = Source.objects.get_or_create(
            slug=API_SOURCE, defaults={"kind": "api", "description": "The publish API"}
        )
        if not source.enabled:
            raise Rejection(400, "the api source is disabled")
        return source
    named = Source.objects.filter(slug=slug, enabled=True).first()
    if named is None:
        raise Rejection(400, f"source {slug!r} does not exist or is disabled")
    if named.kind != "api":
        # A token must not stand in for a webhook sender's signature.
        raise Rejection(
            400, f"source {slug!r} is a {named.kind} source; only api sources take API events"
        )
    return named


def _token(request: HttpRequest) -> ApiToken:
    """The request's token; Rejection 401 without a valid one, 429 while its address is over
    the failed-authentication limit (checked first, so guessing stops paying)."""
    address = ratelimit.client_address(request.META)
    ratelimit.check_failures(address)
    token = authenticate(request.headers.get("Authorization"))
    if token is None:
        ratelimit.count_failure(address)
        raise Rejection(401, "missing or invalid bearer token")
    return token


def _refused(exc: Rejection) -> JsonResponse:
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is None:
        return error(exc.status, exc.message)
    response = error(exc.status, exc.message, retry_after=retry_after)
    response["Retry-After"] = str(retry_after)
    return response


@csrf_exempt
@INGEST_SECONDS.labels("api").time()
def events(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return method_not_allowed("POST")
    try:
        token = _token(request)
        if not token.can_publish:
            raise Rejection(403, "this token may not publish events")
    except Rejection as exc:
        log.info("refused API publish: %s %s", exc.status, exc.message)
        request_log.record(request, endpoint="api", status=exc.status, reason=exc.message)
        return _refused(exc)
    try:
        body = read_body(request)
        if media_type(request.content_type or "") not in {"application/json", ""}:
            raise Rejection(415, "content type must be application/json")
        document = parse_json_object(body)
        incoming = envelope(document, checked=True)
        # One transaction: the "api" source made on first use is not kept if publish() refuses.
        with transaction.atomic():
            source = _api_source(document.get("source"), token)
            result = publish_incoming(source, incoming)
    except Rejection as exc:
        log.info("rejected API publish: %s %s", exc.status, exc.message)
        request_log.record(request, endpoint="api", status=exc.status, reason=exc.message)
        return error(exc.status, exc.message)
    except PublishError as exc:
        log.info("rejected API publish: 400 %s", exc)
        request_log.record(request, endpoint="api", status=400, reason=str(exc))
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
    try:
        token = _token(request)
        if not token.can_read:
            raise Rejection(403, "this token may not read events")
    except Rejection as exc:
        return _refused(exc)
    try:
        parsed = uuid.UUID(event_id)
    except ValueError:
        return error(404, "no such event")
    event = Event.objects.select_related("source").filter(id=parsed).first()
    # An event of a source outside the token's scope is as absent as one that does not exist.
    if event is None or not token.covers(event.source.slug):
        return error(404, "no such event")
    return JsonResponse(event_document(event))
