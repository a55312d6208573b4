"""The generic ``hmac`` kind: HMAC-SHA256, hex, in X-Switchyard-Signature.

The body is the envelope ``{"type": ..., "payload": {...}, "id": ..., "partition_key": ...}``.
The header may carry a ``sha256=`` prefix. The source's first two secrets (newest first) are
tried, so a sender can switch to a new secret while the old one still works; older ones are
no longer accepted (see Source.secrets).

Replays. The source's settings may name a ``timestamp_header``: then the sender signs
``"{timestamp}.{body}"`` and puts the Unix time in that header, and a request more than
``tolerance_seconds`` (300) from our clock is refused, so a captured request stops working.
A request without an ``id`` is then deduplicated by its timestamp and body digest (a replay
inside the window is a duplicate). Without a timestamp header, a request without an ``id`` is
deduplicated by its body digest within ``dedupe_window_seconds`` (3600; 0 turns it off):
the same body again within that time is the same event (events/replays.py).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

from ..dedupe_keys import body_digest, signed_request_id
from .base import (
    JSON_TYPES,
    NO_SECRET,
    ROTATION_SECRETS,
    TOLERANCE_SECONDS,
    Incoming,
    Rejection,
    Signed,
    WebhookKind,
    WebhookRequest,
    check_timestamp,
    envelope,
    matches_any,
    media_type,
    parse_json_object,
    required_header,
)
from .options import Option, header_name, number_or_text, whole_seconds
from .registry import register

HEADER = "X-Switchyard-Signature"
PREFIX = "sha256="
TIMESTAMP_SETTING = "timestamp_header"
TOLERANCE_SETTING = "tolerance_seconds"
WINDOW_SETTING = "dedupe_window_seconds"
DEFAULT_WINDOW = 3600
MAX_WINDOW = 7 * 24 * 3600
MAX_TOLERANCE = 3600

TIMESTAMP = Option(
    TIMESTAMP_SETTING,
    help="the header carrying the signed Unix time (the sender signs '{timestamp}.{body}'; "
    "requests over tolerance-seconds off are refused)",
    check=header_name,
)
TOLERANCE = Option(
    TOLERANCE_SETTING,
    help=f"with --timestamp-header: how far the signed time may be from our clock "
    f"(default {TOLERANCE_SECONDS})",
    parse=number_or_text,
    check=whole_seconds(1, MAX_TOLERANCE),
    default=TOLERANCE_SECONDS,
)
WINDOW = Option(
    WINDOW_SETTING,
    help=f"without --timestamp-header: seconds within which the same body without an id is "
    f"a duplicate (default {DEFAULT_WINDOW}, 0 off)",
    parse=number_or_text,
    check=whole_seconds(0, MAX_WINDOW),
    default=DEFAULT_WINDOW,
)

__all__ = ["HEADER", "ROTATION_SECRETS", "HmacKind", "sign", "signature_matches"]


def sign(secret: str, body: bytes, timestamp: int | str | None = None) -> str:
    """The header value; with ``timestamp``, over ``"{timestamp}.{body}"``."""
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return PREFIX + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_of(given: str) -> bytes | None:
    """The hex digest in a header value (``sha256=`` optional, any case, spaces around), or
    None for a value that cannot be one."""
    if not given.isascii():
        # compare_digest() raises TypeError on non-ASCII str; such a value cannot match anyway.
        return None
    candidate = given.strip()
    if candidate.lower().startswith(PREFIX):
        candidate = candidate[len(PREFIX) :]
    return candidate.lower().encode()


def _hex(secret: str, content: bytes) -> bytes:
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest().encode()


def signature_matches(secrets: list[str], body: bytes, given: str) -> bool:
    """Whether ``given`` is one of ``secrets``' signature of ``body`` (every one is tried)."""
    signature = signature_of(given)
    if signature is None:
        return False
    return matches_any((_hex(secret, body) for secret in secrets), [signature])


@register
class HmacKind(WebhookKind):
    name = "hmac"
    signature_header = HEADER
    options = (TIMESTAMP, TOLERANCE, WINDOW)

    def signed(self, request: WebhookRequest, now: float) -> Signed:
        given = request.headers.get(HEADER)
        if not given:
            raise Rejection(401, f"missing {HEADER} header")
        if not request.secrets:
            # Before the settings are read: a source without a secret is refused as such.
            raise Rejection(401, NO_SECRET)
        settings = self.checked_settings(request.settings)
        content = request.body
        header = TIMESTAMP.value(settings)
        if header:
            header = header.strip()
            timestamp = required_header(request.headers, header).strip()
            check_timestamp(timestamp, header, now, TOLERANCE.value(settings))
            content = f"{timestamp}.".encode() + request.body
        signature = signature_of(given)
        return Signed(content, [signature] if signature is not None else [])

    def read(self, request: WebhookRequest) -> Incoming:
        if media_type(request.content_type) not in JSON_TYPES:
            raise Rejection(415, "content type must be application/json")
        incoming = envelope(parse_json_object(request.body), checked=True)
        if incoming.external_id is not None:
            return incoming
        header = TIMESTAMP.value(request.settings)
        if header:
            timestamp = request.headers.get(header.strip(), "").strip()
            return replace(incoming, external_id=signed_request_id(timestamp, request.body))
        window = WINDOW.value(request.settings)
        return replace(incoming, replay_digest=body_digest(request.body), replay_window=window)

    def sign_request(self, secret: str, body: bytes, now: int) -> dict[str, str]:
        return {HEADER: sign(secret, body)}
