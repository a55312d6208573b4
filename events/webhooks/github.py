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

from .base import (
    FORM_TYPE,
    JSON_TYPES,
    Incoming,
    Rejection,
    Signed,
    WebhookKind,
    WebhookRequest,
    event_type,
    json_form_field,
    media_type,
    parse_json_object,
    required_header,
    string_at,
)
from .registry import register

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@register
class GithubKind(WebhookKind):
    name = "github"
    signature_header = SIGNATURE_HEADER

    def signed(self, request: WebhookRequest, now: float) -> Signed:
        given = required_header(request.headers, SIGNATURE_HEADER)
        if not given.startswith(PREFIX):
            return Signed(request.body, [])
        return Signed(request.body, [given[len(PREFIX) :].lower().encode()])

    def read(self, request: WebhookRequest) -> Incoming:
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

    def sign_request(self, secret: str, body: bytes, now: int) -> dict[str, str]:
        return {SIGNATURE_HEADER: sign(secret, body)}
