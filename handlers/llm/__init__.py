"""The agent runtime: Claude through the ``anthropic`` SDK, tools, and traced steps.

See docs/agents.md ("Runtime").
"""

from .agent import Agent, AgentLimitExceeded, AgentResult, BudgetExceeded
from .tools import Tool, ToolInputError, tool

__all__ = [
    "Agent",
    "AgentLimitExceeded",
    "AgentResult",
    "BudgetExceeded",
    "Tool",
    "ToolInputError",
    "tool",
]
