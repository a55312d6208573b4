"""What an agent run gives back (AgentResult), and what it does under the offline provider
(OfflinePlan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import offline


@dataclass(frozen=True)
class OfflinePlan:
    """What an agent does under the offline provider, worked out from the event alone: the
    tool calls it makes (through the same path as a model's, so allow-list, approvals and
    idempotency keys apply) and its final text."""

    text: str
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class AgentResult:
    text: str
    provider: str
    model: str
    stop_reason: str | None
    turns: int
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def approvals(self) -> list[dict[str, Any]]:
        """The approval requests this run filed or found: ``{"id", "tool", "status"}``."""
        return [
            {"id": s["approval"], "tool": s["name"], "status": s["approval_status"]}
            for s in self.steps
            if s["kind"] == "tool" and "approval" in s
        ]

    @property
    def usage(self) -> dict[str, int]:
        totals = dict.fromkeys(offline.USAGE_KEYS, 0)
        for step in self.steps:
            if step["kind"] == "llm":
                for key in totals:
                    totals[key] += step.get(key) or 0
        return totals

    def as_outcome(self) -> dict[str, Any]:
        """A JSON-safe summary for a handler's return value."""
        outcome: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "text": self.text,
            "stop_reason": self.stop_reason,
            "turns": self.turns,
            "usage": self.usage,
        }
        if self.approvals:
            outcome["approvals"] = self.approvals
        return outcome
