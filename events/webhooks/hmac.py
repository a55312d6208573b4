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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..dedupe_keys import body_digest, signed_request_id
from .base import (
    JSON_TYPES,
    MISMATCH,
    NO_SECRET,
    ROTATION_SECRETS,
    TOLERANCE_SECONDS,
    Clock,
    Incoming,
    Rejection,
    WebhookRequest,
    check_timestamp,
    envelope,
    media_type,
    parse_json_object,
    required_header,
    system_clock,
)

HEADER = "X-Switchyard-Signature"
TIMESTAMP_SETTING = "timestamp_header"
TOLERANCE_SETTING = "tolerance_seconds"
WINDOW_SETTING = "dedupe_window_seconds"
DEFAULT_WINDOW = 3600
MAX_WINDOW = 7 * 24 * 3600
MAX_TOLERANCE = 3600

__all__ = ["HEADER", "ROTATION_SECRETS", "HmacKind", "sign", "signature_matches"]


def sign(secret: str, body: bytes, timestamp: int | str | None = None) -> str:
    """The header value; with ``timestamp``, over ``"{timestamp}.{body}"``."""
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_matches(secrets: list[str], body: bytes, given: str) -> bool:
    if not given.isascii():
        # compare_digest() raises TypeError on non-ASCII str; such a value cannot match anyway.
        return False
    candidate = given.strip()
    if candidate.lower().startswith("sha256="):
        candidate = candidate[len("sha256=") :]
    candidate = candidate.lower()
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        # Check every secret, so the time taken does not tell which one matched.
        matched |= hmac.compare_digest(expected, candidate)
    return matched


@dataclass(frozen=True)
class Options:
    timestamp_header: str | None
    tolerance: int
    window: int


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def options_problem(settings: Mapping[str, Any]) -> str | None:
    """What is wrong with an hmac source's replay settings, or None."""
    header = settings.get(TIMESTAMP_SETTING)
    if header is not None and (
        not isinstance(header, str) or not header.strip() or not header.isascii()
    ):
        return f"{TIMESTAMP_SETTING} must be a header name"
    tolerance = settings.get(TOLERANCE_SETTING, TOLERANCE_SECONDS)
    if not _whole(tolerance, 1, MAX_TOLERANCE):
        return f"{TOLERANCE_SETTING} must be a whole number of seconds from 1 to {MAX_TOLERANCE}"
    window = settings.get(WINDOW_SETTING, DEFAULT_WINDOW)
    if not _whole(window, 0, MAX_WINDOW):
        return f"{WINDOW_SETTING} must be a whole number of seconds from 0 to {MAX_WINDOW}"
    return None


def options(settings: Mapping[str, Any]) -> Options:
    problem = options_problem(settings)
    if problem:
        # The sender is not at fault: say the source is misconfigured, store nothing.
        raise Rejection(503, f"this source's settings are invalid: {problem}")
    header = settings.get(TIMESTAMP_SETTING)
    return Options(
        timestamp_header=header.strip() if isinstance(header, str) else None,
        tolerance=int(settings.get(TOLERANCE_SETTING, TOLERANCE_SECONDS)),
        window=int(settings.get(WINDOW_SETTING, DEFAULT_WINDOW)),
    )


class HmacKind:
    name = "hmac"

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock

    def parse(self, request: WebhookRequest) -> Incoming:
        given = request.headers.get(HEADER)
        if not given:
            raise Rejection(401, f"missing {HEADER} header")
        if not request.secrets:
            raise Rejection(401, NO_SECRET)
        opts = options(request.settings)
        signed = request.body
        timestamp = None
        if opts.timestamp_header:
            timestamp = required_header(request.headers, opts.timestamp_header).strip()
            check_timestamp(timestamp, opts.timestamp_header, self.clock(), opts.tolerance)
            signed = f"{timestamp}.".encode() + request.body
        if not signature_matches(request.secrets[:ROTATION_SECRETS], signed, given):
            raise Rejection(401, MISMATCH)
        if media_type(request.content_type) not in JSON_TYPES:
            raise Rejection(415, "content type must be application/json")
        incoming = envelope(parse_json_object(request.body), checked=True)
        if incoming.external_id is not None:
            return incoming
        if timestamp is not None:
            return replace(incoming, external_id=signed_request_id(timestamp, request.body))
        return replace(incoming, replay_digest=body_digest(request.body), replay_window=opts.window)

    def secret_problem(self, secret: str) -> str | None:
        return None

    def settings_problem(self, settings: Mapping[str, Any]) -> str | None:
        return options_problem(settings)
