"""The briefing agent's one tool: a bounded summary of the pipeline's recent hours."""

from __future__ import annotations

from typing import Any

from handlers.llm import tool

from . import summary


@tool(kind="read")
def pipeline_summary(hours: int = 24) -> dict[str, Any]:
    """Summarise the pipeline's last hours: events, dead letters, approvals, agent spend.

    Events are counted by type and status; dead letters come newest first with their handler
    and a short error; agent spend is LLM calls, tokens and cost per handler.

    Args:
        hours: How many hours back to look, from 1 to 168.
    """
    return summary.pipeline_summary(hours)
