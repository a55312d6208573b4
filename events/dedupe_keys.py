"""External ids for requests that carry none of their own, built from what was signed, so a
replayed request is a duplicate rather than a second event (docs/webhooks.md, "What is
deduplicated, per kind"). Not signature checks: these digests are keys, not proofs."""

from __future__ import annotations

import hashlib


def body_digest(body: bytes) -> str:
    """What identifies a request that carries no id of its own: its body's SHA-256."""
    return hashlib.sha256(body).hexdigest()


def signed_request_id(timestamp: str, body: bytes) -> str:
    """An external id for a request without one, where the scheme signs a timestamp: the
    timestamp and the body's digest. A replay inside the timestamp window has the same id (a
    duplicate); outside it the signature check refuses it."""
    return f"sig:{timestamp.strip()}:{body_digest(body)[:40]}"
