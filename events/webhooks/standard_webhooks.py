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
import logging
from collections.abc import Mapping

from .base import (
    JSON_TYPES,
    MISMATCH,
    NO_SECRET,
    ROTATION_SECRETS,
    Clock,
    Incoming,
    Rejection,
    WebhookRequest,
    check_timestamp,
    event_type,
    media_type,
    parse_json_object,
    required_header,
    string_at,
    system_clock,
)

log = logging.getLogger("switchyard.ingest")

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
VERSION = "v1"
# Source.settings key: the first part of every event type from this source.
TYPE_PREFIX_SETTING = "type_prefix"
DEFAULT_TYPE_PREFIX = "standard_webhooks"


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


def verify(headers: Mapping[str, str], body: bytes, secrets: list[str], now: float) -> None:
    """Raise a Rejection unless one v1 signature is by one of the secrets, recently."""
    msg_id = required_header(headers, ID_HEADER)
    timestamp = required_header(headers, TIMESTAMP_HEADER).strip()
    given = required_header(headers, SIGNATURE_HEADER)
    check_timestamp(timestamp, TIMESTAMP_HEADER, now)
    if not secrets:
        raise Rejection(401, NO_SECRET)
    keys = [key for key in map(signing_key, secrets[:ROTATION_SECRETS]) if key is not None]
    if not keys:
        # The operator's mistake, not the sender's: say so in the log (never the secret).
        log.warning("standard_webhooks source has no valid whsec_ secret among its first two")
    candidates = []
    for item in given.split(" "):
        version, sep, encoded = item.partition(",")
        decoded = _b64decode(encoded) if sep and version == VERSION else None
        if decoded is not None:
            candidates.append(decoded)
    expected = (_digest(key, msg_id, timestamp, body) for key in keys)
    matched = False
    for want in expected:
        for candidate in candidates:
            # Every pair is compared: the time taken does not tell which secret matched.
            matched |= hmac.compare_digest(want, candidate)
    if not matched:
        raise Rejection(401, MISMATCH)


class StandardWebhooksKind:
    name = "standard_webhooks"

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock

    def parse(self, request: WebhookRequest) -> Incoming:
        verify(request.headers, request.body, request.secrets, self.clock())
        if media_type(request.content_type) not in JSON_TYPES:
            raise Rejection(415, "content type must be application/json")
        payload = parse_json_object(request.body)
        prefix = request.settings.get(TYPE_PREFIX_SETTING) or DEFAULT_TYPE_PREFIX
        return Incoming(
            type=event_type(str(prefix), string_at(payload, "type")),
            payload=payload,
            external_id=request.headers[ID_HEADER].strip(),
        )

    def secret_problem(self, secret: str) -> str | None:
        if signing_key(secret) is None:
            return "a Standard Webhooks secret is whsec_ followed by a base64 key"
        return None
