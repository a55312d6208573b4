"""What the alert triager is told, and how its answer is read (the same for both providers)."""

from __future__ import annotations

from typing import Any

from handlers.llm import AnswerFormatError, json_answer

SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
MAX_CHARS = 600

SYSTEM = """\
You are the first responder for monitoring alerts (Prometheus Alertmanager or Grafana). For
each alert you write a short incident summary for the on-call engineer, set a severity and
suggest the one next step that helps most. You do not page anyone or change anything.

Severity:
- sev1: a customer-facing outage or data loss happening now;
- sev2: a major degradation of a customer-facing service (errors, latency) or a critical
  alert on a production service;
- sev3: a minor or partial problem, a warning, or a non-production system;
- sev4: informational, or an alert that is flapping without user impact.
"""

INSTRUCTIONS = """\
Triage the alert in the event below. Call recent_alerts with the alert's name to see whether
it has fired before in the last 24 hours: three or more earlier firings means it is flapping,
and the next step should include looking at the rule's threshold.

Answer with one JSON object and nothing else:
{"summary": "what is happening, where, since when, in one or two sentences",
 "severity": "sev1" | "sev2" | "sev3" | "sev4",
 "next_step": "the first thing the on-call engineer should do",
 "flapping": true | false}
"""


def parse_answer(text: str) -> dict[str, Any]:
    """The triage from the final text (a model's, or the offline plan's)."""
    answer = json_answer(
        text,
        required={"summary": str, "severity": str, "next_step": str},
        choices={"severity": SEVERITIES},
    )
    summary, next_step = answer["summary"].strip(), answer["next_step"].strip()
    if not summary or not next_step:
        raise AnswerFormatError("the answer's 'summary' and 'next_step' must not be empty")
    flapping = answer.get("flapping", False)
    if not isinstance(flapping, bool):
        raise AnswerFormatError(f"the answer's 'flapping' is {flapping!r}, not true or false")
    return {
        "summary": summary[:MAX_CHARS],
        "severity": answer["severity"],
        "next_step": next_step[:MAX_CHARS],
        "flapping": flapping,
    }
