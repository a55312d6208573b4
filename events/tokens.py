"""API tokens: ``sy_<prefix>_<secret>``. Only a SHA-256 digest is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from django.utils import timezone

from .models import ApiToken


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


SCOPES = ("publish", "read")
DEFAULT_SOURCE = "api"  # the api source POST /api/events uses when the body names none


def create_token(
    name: str,
    *,
    sources: Iterable[str] = (DEFAULT_SOURCE,),
    all_sources: bool = False,
    scopes: Iterable[str] = ("publish",),
) -> tuple[ApiToken, str]:
    """A new token and its record. By default it may publish into the default api source
    only, and read nothing back."""
    chosen = set(scopes)
    if unknown := chosen - set(SCOPES):
        raise ValueError(f"unknown scope(s) {', '.join(sorted(unknown))}; use publish, read")
    prefix = secrets.token_hex(4)
    token = f"sy_{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiToken.objects.create(
        name=name,
        prefix=prefix,
        digest=_digest(token),
        sources=sorted(set(sources)),
        all_sources=all_sources,
        can_publish="publish" in chosen,
        can_read="read" in chosen,
    )
    return record, token


def authenticate(authorization: str | None) -> ApiToken | None:
    """The token named by an ``Authorization: Bearer ...`` header, if it is valid."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith("sy_") or not token.isascii():
        return None
    parts = token.split("_", 2)
    # The prefix is hex (create_token); checking it first keeps a NUL or other junk out of the
    # query, which PostgreSQL would refuse with an error (a 500) instead of a 401.
    if len(parts) != 3 or not parts[1] or not all(c in "0123456789abcdef" for c in parts[1]):
        return None
    record = ApiToken.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    if record is None or not hmac.compare_digest(record.digest, _digest(token)):
        return None
    ApiToken.objects.filter(id=record.id).update(last_used_at=timezone.now())
    return record
