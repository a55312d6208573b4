"""The generic ``hmac`` kind: HMAC-SHA256 of the raw body, hex, in X-Switchyard-Signature.

The body is the envelope ``{"type": ..., "payload": {...}, "id": ..., "partition_key": ...}``.
The header may carry a ``sha256=`` prefix. The source's first two secrets (newest first) are
tried, so a sender can switch to a new secret while the old one still works; older ones are
no longer accepted (see Source.secrets).
"""

from __future__ import annotations

import hashlib
import hmac

from .base import (
    JSON_TYPES,
    MISMATCH,
    NO_SECRET,
    ROTATION_SECRETS,
    Incoming,
    Rejection,
    WebhookRequest,
    envelope,
    media_type,
    parse_json_object,
)

HEADER = "X-Switchyard-Signature"

__all__ = ["HEADER", "ROTATION_SECRETS", "HmacKind", "sign", "signature_matches"]


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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


class HmacKind:
    name = "hmac"

    def parse(self, request: WebhookRequest) -> Incoming:
        given = request.headers.get(HEADER)
        if not given:
            raise Rejection(401, f"missing {HEADER} header")
        if not request.secrets:
            raise Rejection(401, NO_SECRET)
        if not signature_matches(request.secrets[:ROTATION_SECRETS], request.body, given):
            raise Rejection(401, MISMATCH)
        if media_type(request.content_type) not in JSON_TYPES:
            raise Rejection(415, "content type must be application/json")
        return envelope(parse_json_object(request.body), checked=True)

    def secret_problem(self, secret: str) -> str | None:
        return None
