"""The offline provider: no key, no network, the same answer for the same event.

The answer is derived from a hash of the agent's name, the instructions and the event's type
and payload, and says plainly that no model was called, so nobody mistakes it for a real one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from handlers.context import HandlerContext

USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


@dataclass(frozen=True)
class OfflineResult:
    text: str
    steps: list[dict[str, Any]]


def run(agent: str, ctx: HandlerContext, user_content: str) -> OfflineResult:
    material = json.dumps(
        [agent, user_content, ctx.event.type, ctx.event.payload],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    digest = hashlib.sha256(material.encode()).hexdigest()[:16]
    text = (
        f"[offline provider] {agent} did not call a model. Event {ctx.event.type} "
        f"has content digest {digest}. Set ANTHROPIC_API_KEY for real answers."
    )
    step: dict[str, Any] = {
        "kind": "llm",
        "provider": "offline",
        "turn": 1,
        "model": "offline",
        **dict.fromkeys(USAGE_KEYS, 0),
        "stop_reason": "end_turn",
        "latency_ms": 0,
        "digest": digest,
    }
    return OfflineResult(text=text, steps=[step])
