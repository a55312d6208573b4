"""Database connections around long waits: give a pooled connection back before waiting.

Django returns a pooled connection to its pool only when the connection is closed: at the end
of a request or a Celery task, or here. A worker thread that kept its connection while an agent
waits seconds on the model would hold one of the pool's few connections for nothing, and the
other threads would wait for it ("couldn't get a connection"). The pipeline calls
``release_connections()`` after claiming a delivery and after each short write a handler's
context makes; the agent runtime calls it before every model call. A plain handler that waits
on a slow API after using the ORM may call it too.

Without a pool (SQLite, or PostgreSQL with ``?pool=false``) it does nothing: closing would only
cost a reconnect.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")


def release_connections() -> None:
    """Return this thread's pooled connections to their pools, unless a transaction is open."""
    for conn in connections.all(initialized_only=True):
        if (
            conn.connection is not None
            and not conn.in_atomic_block
            and conn.settings_dict.get("OPTIONS", {}).get("pool")
        ):
            conn.close()


def releasing(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn``, giving this thread's pooled connections back once it returns: for a callback a
    handler calls between waits (a step recorded, a budget read)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            release_connections()

    return call
