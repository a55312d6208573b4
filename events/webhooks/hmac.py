"""The generic ``hmac`` kind: HMAC-SHA256 of the raw body, hex, in X-Switchyard-Signature.

The body is the envelope ``{"type": ..., "payload": {...}, "id": ..., "partition_key": ...}``.
The header may carry a ``sha256=`` prefix. The source's first two secrets (newest first) are
tried, so a sender can switch to a new secret while the old one still works; older ones are
no longer accepted (see Source.secrets).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from .base import Incoming, Rejection, envelope, media_type, parse_json_object

HEADER = "X-Switchyard-Signature"
# The new secret and the one it replaces.
ROTATION_SECRETS = 2


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

    def parse(
        self, headers: Mapping[str, str], body: bytes, secrets: list[str], content_type: str
    ) -> Incoming:
        given = headers.get(HEADER)
        if not given:
            raise Rejection(401, f"missing {HEADER} header")
        if not secrets:
            raise Rejection(401, "this source has no secret configured")
        if not signature_matches(secrets[:ROTATION_SECRETS], body, given):
            raise Rejection(401, "signature does not match")
        if media_type(content_type) not in {"application/json", ""}:
            raise Rejection(415, "content type must be application/json")
        return envelope(parse_json_object(body))
