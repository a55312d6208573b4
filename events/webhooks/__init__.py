"""Webhook source kinds, one module each, registered by name.

A kind verifies a request against its source's secrets using the raw body bytes, then turns it
into the fields publish() needs. Adding a provider is one new module here plus one line in
``KINDS`` below (see docs/webhooks.md).
"""

from __future__ import annotations

from .base import Incoming, Rejection, Reply, WebhookKind, WebhookRequest
from .github import GithubKind
from .hmac import HmacKind
from .slack import SlackKind
from .standard_webhooks import StandardWebhooksKind
from .stripe import StripeKind

KINDS: dict[str, WebhookKind] = {
    kind.name: kind
    for kind in (HmacKind(), GithubKind(), StripeKind(), SlackKind(), StandardWebhooksKind())
}

# Kinds that never arrive over /hooks/: they are published from inside the system.
NON_WEBHOOK_KINDS = {
    "api": "publish API",
    "internal": "follow-ups emitted by handlers",
    "folder": "files landing in a folder (manage.py watch_folder)",
    "stream": "entries of a Redis Stream (manage.py consume_stream)",
    "schedule": "ticks of the schedules (Celery Beat)",
}


def get_kind(name: str) -> WebhookKind | None:
    return KINDS.get(name)


def all_kind_names() -> list[str]:
    return sorted([*KINDS, *NON_WEBHOOK_KINDS])


__all__ = [
    "KINDS",
    "Incoming",
    "Rejection",
    "Reply",
    "WebhookKind",
    "WebhookRequest",
    "all_kind_names",
    "get_kind",
]
