"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``.

GitHub signs no timestamp, so the only replay defence is the dedupe on ``X-GitHub-Delivery``,
which GitHub keeps when a delivery is redelivered by hand. Deliveries are JSON, or
form-encoded with the JSON in a ``payload`` field, depending on the hook's content type.

- type: ``github.<X-GitHub-Event>.<action>``, or ``github.<X-GitHub-Event>`` when the payload
  has no action (``ping``, ``push``)
- external id: ``X-GitHub-Delivery``
- partition key: ``repository.full_name`` when the payload has a repository
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from .base import (
    FORM_TYPE,
    JSON_TYPES,
    MISMATCH,
    NO_SECRET,
    ROTATION_SECRETS,
    Incoming,
    Rejection,
    WebhookRequest,
    event_type,
    json_form_field,
    media_type,
    parse_json_object,
    required_header,
    string_at,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secrets: list[str]) -> None:
    """Raise Rejection(401) unless the signature is one of the first two secrets' over body."""
    given = required_header(headers, SIGNATURE_HEADER)
    if not secrets:
        raise Rejection(401, NO_SECRET)
    if not given.startswith(PREFIX):
        raise Rejection(401, MISMATCH)
    candidates = [given[len(PREFIX) :].lower().encode()]
    expected = (sign(s, body)[len(PREFIX) :].encode() for s in secrets[:ROTATION_SECRETS])
    matched = False
    for want in expected:
        for candidate in candidates:
            # Every pair is compared: the time taken does not tell which secret matched.
            matched |= hmac.compare_digest(want, candidate)
    if not matched:
        raise Rejection(401, MISMATCH)


class GithubKind:
    name = "github"

    def parse(self, request: WebhookRequest) -> Incoming:
        verify(request.headers, request.body, request.secrets)
        event = required_header(request.headers, EVENT_HEADER, status=400).strip()
        delivery = required_header(request.headers, DELIVERY_HEADER, status=400).strip()
        content_type = media_type(request.content_type)
        if content_type in JSON_TYPES:
            payload = parse_json_object(request.body)
        elif content_type == FORM_TYPE:
            payload = json_form_field(request.body, "payload")
        else:
            raise Rejection(415, f"content type must be application/json or {FORM_TYPE}")
        return Incoming(
            type=event_type("github", event, string_at(payload, "action")),
            payload=payload,
            external_id=delivery,
            partition_key=string_at(payload, "repository", "full_name"),
            payload_checked=True,  # parse_json_object() checked it
        )

    def secret_problem(self, secret: str) -> str | None:
        return None
