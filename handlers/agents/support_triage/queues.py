"""Which team queue each category goes to: defaults, overridden by a setting.

The queue is looked up from the category here, never taken from the model's answer, so a
ticket cannot talk its way into a queue of its choosing.
"""

from __future__ import annotations

import json
import re

CATEGORIES = ("billing", "bug", "account", "feature_request", "other")
DEFAULT_QUEUES: dict[str, str] = {
    "billing": "billing",
    "bug": "engineering-support",
    "account": "accounts",
    "feature_request": "product",
    "other": "support",
}
QUEUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$")
SETTING = "SWITCHYARD_SUPPORT_QUEUES_JSON"


def parse(raw: str) -> dict[str, str]:
    """The full category -> queue map: DEFAULT_QUEUES with ``raw``'s entries over it.
    Raises ValueError saying what is wrong."""
    queues = dict(DEFAULT_QUEUES)
    if not raw.strip():
        return queues
    try:
        given = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{SETTING} is not valid JSON: {exc}") from None
    if not isinstance(given, dict):
        raise ValueError(f'{SETTING} must be a JSON object like {{"bug": "platform"}}')
    for category, queue in given.items():
        if category not in CATEGORIES:
            raise ValueError(
                f"{SETTING} names an unknown category {category!r}; use {', '.join(CATEGORIES)}"
            )
        if not isinstance(queue, str) or not QUEUE_RE.fullmatch(queue):
            raise ValueError(
                f"{SETTING}: the queue for {category!r} must be 1-64 letters, digits or _.:/- "
                f"(got {queue!r})"
            )
        queues[category] = queue
    return queues
