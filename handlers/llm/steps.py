"""The steps of an agent run as the pipeline stores them (``ctx.record_step``): one per model
call and one per tool call."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from handlers.context import HandlerContext

if TYPE_CHECKING:
    import anthropic


def llm_step(
    response: anthropic.types.Message, *, turn: int, model: str, started: float
) -> dict[str, Any]:
    usage = response.usage
    return {
        "kind": "llm",
        "provider": "anthropic",
        "turn": turn,
        "model": response.model or model,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens or 0,
        "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
        "stop_reason": response.stop_reason,
        "latency_ms": ms_since(started),
    }


def assistant_content(response: anthropic.types.Message) -> list[dict[str, Any]]:
    """The model's turn, sent back verbatim on the next request."""
    content: list[dict[str, Any]] = []
    for block in response.content:
        if block.type == "text":
            content.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            content.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
            )
        else:  # thinking and other blocks go back as the API sent them
            content.append(block.model_dump(mode="json", exclude_none=True))
    return content


def record_step(ctx: HandlerContext, step: dict[str, Any]) -> None:
    if ctx.record_step is not None:
        ctx.record_step(step)


def ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
