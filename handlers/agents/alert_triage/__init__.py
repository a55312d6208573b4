"""Alert triage: each monitoring alert gets an incident summary, a severity and a next step.

On ``alert.fired`` (an Alertmanager or Grafana webhook body published under that type) the
agent looks at how often the same alert fired lately and answers with the triage, which
becomes the delivery's outcome. See docs/agents.md ("Alert triage").
"""

from __future__ import annotations

import json
from typing import Any

from handlers.context import HandlerContext
from handlers.llm import Agent, OfflinePlan
from handlers.registry import handler

from . import prompt, rules, tools
from .facts import facts

NAME = "alerts.triage"
HISTORY_HOURS = 24


def offline_plan(ctx: HandlerContext) -> OfflinePlan:
    """The rule-based triage as the JSON answer the model would give, using the same history
    lookup the model is asked to make (and making it, so the trace shows it)."""
    alert = facts(ctx.event.payload)
    if not alert["name"]:
        return OfflinePlan(text=json.dumps(rules.triage(alert, 0)))
    call = {"name": alert["name"], "hours": HISTORY_HOURS}
    earlier = tools.recent_alerts.fn(**call)["count"]
    return OfflinePlan(
        text=json.dumps(rules.triage(alert, earlier)), calls=[("recent_alerts", call)]
    )


triager = Agent(
    name=NAME,
    system=prompt.SYSTEM,
    tools=[tools.recent_alerts],
    max_turns=4,
    max_tokens=800,
    offline=offline_plan,
)


@handler(NAME, on=["alert.fired"], max_attempts=4, time_limit=180, resources=["anthropic"])
def triage_alert(ctx: HandlerContext) -> dict[str, Any]:
    """Summarise a monitoring alert, set its severity and suggest the next step."""
    result = triager.run(ctx, prompt.INSTRUCTIONS)
    triage = prompt.parse_answer(result.text)
    alert = facts(ctx.event.payload)
    return {
        **result.as_outcome(),
        **triage,
        "alert": {key: alert[key] for key in ("name", "status", "service", "alerts")},
    }
