"""The webhook kinds by name, filled by @register in each kind's module (the package imports
them all, see __init__.py), and the kinds that never arrive over /hooks/."""

from __future__ import annotations

import re
from typing import TypeVar

from .base import WebhookKind

K = TypeVar("K", bound=type[WebhookKind])

# As Source.kind stores it (max_length 32).
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")

KINDS: dict[str, WebhookKind] = {}

# Kinds that never arrive over /hooks/: they are published from inside the system.
NON_WEBHOOK_KINDS = {
    "api": "publish API",
    "internal": "follow-ups emitted by handlers",
    "folder": "files landing in a folder (manage.py watch_folder)",
    "stream": "entries of a Redis Stream (manage.py consume_stream)",
    "schedule": "ticks of the schedules (Celery Beat)",
}


def register(cls: K) -> K:
    """Register one instance of ``cls`` under ``cls.name``; refuse what create_source, the
    admin or Source.kind could not tell apart."""
    name = cls.name
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"webhook kind name {name!r} must match {NAME_RE.pattern}")
    if name in KINDS or name in NON_WEBHOOK_KINDS:
        raise ValueError(f"webhook kind {name!r} is registered twice")
    for attribute in ("key", "cli_flag"):
        values = [getattr(option, attribute) for option in cls.options]
        if len(set(values)) != len(values):
            raise ValueError(f"webhook kind {name!r} declares an option {attribute} twice")
    KINDS[name] = cls()
    return cls


def get_kind(name: str) -> WebhookKind | None:
    return KINDS.get(name)


def all_kind_names() -> list[str]:
    return sorted([*KINDS, *NON_WEBHOOK_KINDS])
