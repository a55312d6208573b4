"""Acting once per idempotency key, for write tools and handlers whose effect is not idempotent.

``once(key, act)`` runs ``act()`` and stores its JSON result under ``key`` in the same
transaction; a later call with the same key returns the stored result without acting. Two
concurrent calls with one key serialise on the key's unique index: the second waits for the
first to commit and then returns its result.

The guarantee is exact for effects inside this database (``act`` writes rows: they commit or
roll back with the key). For an effect outside it (an email, an HTTP call) there is a narrow
window: a process killed after ``act()`` returned and before the commit leaves no key, and
the retry acts again. Pass the key on to the other system as well where it accepts one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction

from .models import ToolEffect


def once(key: str, act: Callable[[], Any]) -> Any:
    """``act()``'s result, acting only if nothing is stored under ``key`` yet."""
    if not key:
        raise ValueError("once() needs a non-empty idempotency key")
    stored = ToolEffect.objects.filter(key=key).values_list("result", flat=True)
    if stored:
        return stored[0]
    with transaction.atomic():
        try:
            with transaction.atomic():
                # The row first: a concurrent call with this key blocks here until we commit.
                effect = ToolEffect.objects.create(key=key)
        except IntegrityError:
            return ToolEffect.objects.filter(key=key).values_list("result", flat=True).first()
        result = act()
        effect.result = result
        effect.save(update_fields=["result"])
    return result


def done(key: str) -> bool:
    """Whether an effect is stored under ``key``."""
    return ToolEffect.objects.filter(key=key).exists()
