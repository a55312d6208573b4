"""The agent runtime: Claude through the ``anthropic`` SDK, tools, and traced steps.

See docs/agents.md ("Runtime").
"""

from .agent import Agent, AgentLimitExceeded, BudgetExceeded, get_agent
from .answers import AnswerFormatError, json_answer
from .results import AgentResult, OfflinePlan
from .tools import Tool, ToolInputError, current_event, tool

__all__ = [
    "Agent",
    "AgentLimitExceeded",
    "AgentResult",
    "AnswerFormatError",
    "BudgetExceeded",
    "OfflinePlan",
    "Tool",
    "ToolInputError",
    "current_event",
    "get_agent",
    "json_answer",
    "tool",
]
