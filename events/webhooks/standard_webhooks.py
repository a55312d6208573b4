"""Standard Webhooks (https://www.standardwebhooks.com/; Svix and the senders built on it).

Headers ``webhook-id``, ``webhook-timestamp`` (within 300 s of our clock) and
``webhook-signature``: a space-separated list of ``v1,<base64 HMAC-SHA256>``, any of which may
match; other versions (``v1a`` asymmetric signatures) are skipped. The signed content is
``{id}.{timestamp}.{raw body}`` and the key is the base64-decoded part of the ``whsec_...``
secret (unlike Stripe, which uses the whole string).

The ``standardwebhooks`` package verifies the same scheme, but reads its own clock, decodes the
body as text and raises ValueError on a malformed header; this module needs an injectable clock,
raw bytes, two secrets and a 400 rather than a 500, so it is used in the tests as the reference.

- type: ``<prefix>.<payload type>`` (prefix: the source's ``type_prefix`` setting, by default
  ``standard_webhooks``); just ``<prefix>`` when the payload has no ``type``
- external id: ``webhook-id``, the same on every retry
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from ..dedupe_keys import body_digest
from .base import (
    JSON_TYPES,
    Incoming,
    Rejection,
    Signed,
    WebhookKind,
    WebhookRequest,
    check_timestamp,
    event_type,
    media_type,
    parse_json_object,
    required_header,
    string_at,
)
from .options import Option
from .registry import register

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
VERSION = "v1"
# Source.settings key: the first part of every event type from this source.
TYPE_PREFIX_SETTING = "type_prefix"
DEFAULT_TYPE_PREFIX = "standard_webhooks"
TYPE_PREFIX = Option(
    TYPE_PREFIX_SETTING,
    help=f"first part of the event types (default {DEFAULT_TYPE_PREFIX})",
)


def _b64decode(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def signing_key(secret: str) -> bytes | None:
    """The HMAC key in a ``whsec_<base64>`` secret, or None if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    encoded = secret[len(SECRET_PREFIX) :]
    # Some senders drop the base64 padding.
    return _b64decode(encoded + "=" * (-len(encoded) % 4)) or None


def _digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """A webhook-signature value for ``body``, as a sender would make it."""
    key = signing_key(secret)
    if key is None:
        raise ValueError("not a whsec_ secret")
    digest = _digest(key, msg_id, str(timestamp), body)
    return f"{VERSION},{base64.b64encode(digest).decode()}"


@register
class StandardWebhooksKind(WebhookKind):
    name = "standard_webhooks"
    signature_header = SIGNATURE_HEADER
    timestamp_header = TIMESTAMP_HEADER
    options = (TYPE_PREFIX,)

    def signed(self, request: WebhookRequest, now: float) -> Signed:
        msg_id = required_header(request.headers, ID_HEADER)
        timestamp = required_header(request.headers, TIMESTAMP_HEADER).strip()
        given = required_header(request.headers, SIGNATURE_HEADER)
        check_timestamp(timestamp, TIMESTAMP_HEADER, now)
        signatures = []
        for item in given.split(" "):
            version, sep, encoded = item.partition(",")
            decoded = _b64decode(encoded) if sep and version == VERSION else None
            if decoded is not None:
                signatures.append(decoded)
        return Signed(f"{msg_id}.{timestamp}.".encode() + request.body, signatures)

    def signing_key(self, secret: str) -> bytes | None:
        return signing_key(secret)

    def digest(self, key: bytes, content: bytes) -> bytes:
        return hmac.new(key, content, hashlib.sha256).digest()

    def read(self, request: WebhookRequest) -> Incoming:
        if media_type(request.content_type) not in JSON_TYPES:
            raise Rejection(415, "content type must be application/json")
        payload = parse_json_object(request.body)
        prefix = request.settings.get(TYPE_PREFIX_SETTING) or DEFAULT_TYPE_PREFIX
        return Incoming(
            type=event_type(str(prefix), string_at(payload, "type")),
            payload=payload,
            external_id=request.headers[ID_HEADER].strip(),
        )

    def sign_request(self, secret: str, body: bytes, now: int) -> dict[str, str]:
        # The sender's id for this message; any unique string will do.
        msg_id = "msg_" + body_digest(body)[:24]
        return {
            ID_HEADER: msg_id,
            TIMESTAMP_HEADER: str(now),
            SIGNATURE_HEADER: sign(secret, msg_id, now, body),
        }

    def secret_problem(self, secret: str) -> str | None:
        if signing_key(secret) is None:
            return "a Standard Webhooks secret is whsec_ followed by a base64 key"
        return None
