"""Short-lived, per-process memos of the rows every webhook reads: its source and the routes.

Profiling `/hooks/<slug>` (docs/benchmarks.md) showed the source lookup and the route query
costing about a quarter of a webhook's CPU, for rows that change a few times a year. Each web
process keeps them for ``SWITCHYARD_LOOKUP_CACHE_SECONDS`` (5 by default; 0 turns the memo
off): an admin edit (a disabled source, a rotated secret, a route switched off) takes effect
within that many seconds. A secret rotation loses nothing meanwhile, since the old secret is
still accepted next to the new one. Only rows that exist are kept (an unknown slug is looked
up every time, so probing slugs cannot fill the memo), and each memo is bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from events import conf

V = TypeVar("V")

MAX_ENTRIES = 1024


class Memo(Generic[V]):
    """``get(key, load)``: the value loaded less than the configured seconds ago, else
    ``load()`` again. A None from ``load`` is returned and not kept."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        seconds = float(conf.LOOKUP_CACHE_SECONDS.get())
        if seconds <= 0:
            return load()
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < seconds:
            return entry[1]
        value = load()
        if value is not None:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
