"""Webhook source kinds, one module each, registered by name.

A kind verifies a request against its source's secrets using the raw body bytes, then turns it
into the fields publish() needs. Adding a provider is one new module here, its class decorated
with ``@register``, plus its name in the import line below (see docs/webhooks.md).
"""

from __future__ import annotations

# The registry line: importing a kind's module registers its kind.
from . import github, hmac, slack, standard_webhooks, stripe  # noqa: F401
from .base import Incoming, Rejection, Reply, WebhookKind, WebhookRequest
from .registry import KINDS, NON_WEBHOOK_KINDS, all_kind_names, get_kind, register

__all__ = [
    "KINDS",
    "NON_WEBHOOK_KINDS",
    "Incoming",
    "Rejection",
    "Reply",
    "WebhookKind",
    "WebhookRequest",
    "all_kind_names",
    "get_kind",
    "register",
]
