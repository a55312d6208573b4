"""Dead letters by cause: grouped by handler, error class and a fingerprint of the message.

The fingerprint is the message's first line with what varies between occurrences of one cause
taken out (ids, numbers, quoted values, URLs), so "order 1234 not found" and "order 98 not
found" fall in one group. The groups are computed from the dead letters themselves (the newest
``MAX_SCANNED``, through the partial index on dead-lettered rows): nothing is stored, so a
group is always what is dead-lettered now.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from .models import Delivery, DeliveryStatus

MAX_SCANNED = 20_000
MAX_FINGERPRINT = 200
# What varies between occurrences of one cause, in the order it is replaced.
VARYING = (
    (re.compile(r"https?://\S+"), "<url>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<value>"),
    (re.compile(r"\b(?:0x)?[0-9a-f]*\d[0-9a-f]*\b", re.I), "<n>"),
    (re.compile(r"\b[a-z]+_[A-Za-z0-9]{6,}\b"), "<id>"),  # in_1Abc..., cus_..., pi_...
)


def fingerprint(message: str) -> str:
    """The message's first line with its varying parts replaced."""
    line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    for pattern, placeholder in VARYING:
        line = pattern.sub(placeholder, line)
    return " ".join(line.split())[:MAX_FINGERPRINT]


@dataclass
class Group:
    handler: str
    error_class: str
    fingerprint: str
    sample: str = ""  # the newest message of the group, as it was
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    ids: list[int] = field(default_factory=list)

    @property
    def key(self) -> str:
        """A stable id for the group, for URLs and forms."""
        text = "\x1f".join((self.handler, self.error_class, self.fingerprint))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def count(self) -> int:
        return len(self.ids)


def groups(limit: int = MAX_SCANNED) -> tuple[list[Group], bool]:
    """The groups, largest first, and whether more dead letters exist than were scanned."""
    rows = list(
        Delivery.objects.filter(status=DeliveryStatus.DEAD_LETTERED)
        .order_by("-finished_at", "-id")
        .values_list("id", "handler", "error_class", "last_error", "finished_at")[: limit + 1]
    )
    truncated = len(rows) > limit
    by_key: dict[tuple[str, str, str], Group] = {}
    for delivery_id, handler, error_class, last_error, finished_at in rows[:limit]:
        cause = (handler, error_class, fingerprint(last_error))
        group = by_key.get(cause)
        if group is None:
            group = by_key[cause] = Group(*cause, sample=last_error, last_seen=finished_at)
        group.ids.append(delivery_id)
        group.first_seen = finished_at  # rows come newest first
    ordered = sorted(by_key.values(), key=lambda g: (-g.count, g.handler, g.fingerprint))
    return ordered, truncated


def group_by_key(key: str) -> Group | None:
    """The group with this key as it stands now (its members may have changed since a page
    showed it: only those still dead-lettered count)."""
    return next((group for group in groups()[0] if group.key == key), None)
