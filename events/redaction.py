"""Keeping known secrets out of what the pipeline stores and shows.

A run's outcome, the events it emits, its error and traceback, and whatever other apps store
for it (an agent's steps) go through a Sanitiser first: secret-looking environment variables,
``SECRET_KEY`` and the event source's webhook secrets are replaced, and strings are made
storable in PostgreSQL (NUL and lone surrogates escaped, not refused).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from .lookups import Memo
from .models import Delivery

MAX_DEPTH = 20
REDACTED = "[redacted]"
TRUNCATED = "[truncated]"
# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
# Shorter values are too likely to occur by chance (and too weak to be real secrets).
MIN_SECRET_LENGTH = 8


# The environment's secret-looking values, read through the lookup memo: every delivery needs
# them, and scanning the environment cost more CPU than the rest of setting up its redaction.
# A variable set while a process runs is redacted within the memo's seconds.
ENVIRONMENT = Memo[frozenset[str]]()


def _environment_secrets() -> frozenset[str]:
    return frozenset(value for name, value in os.environ.items() if SECRET_ENV_NAME.search(name))


def secret_values(extra: Iterable[Any] = ()) -> list[str]:
    """Values that must never be stored: secret-looking environment variables, SECRET_KEY and
    ``extra`` (the event source's webhook secrets). Longest first, so a secret that contains
    another is replaced whole."""
    found = set(ENVIRONMENT.get("", _environment_secrets) or ())
    found.add(str(settings.SECRET_KEY))
    for item in extra:
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            found.update(v for v in item.values() if isinstance(v, str))
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


class Sanitiser:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        # As PostgreSQL can store it: NUL and lone surrogates escaped, not refused.
        value = value.replace("\x00", "\\x00")
        return value.encode("utf-8", "backslashreplace").decode("utf-8")

    def json(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            return TRUNCATED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.json(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.json(item, depth + 1) for item in value]
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if value == value and abs(value) != float("inf") else str(value)
        return self.text(str(value))


def sanitiser_for(delivery: Delivery) -> Sanitiser:
    """Redacts the secrets that matter for this delivery (see ``secret_values``)."""
    return Sanitiser(secret_values(delivery.event.source.secrets or ()))
