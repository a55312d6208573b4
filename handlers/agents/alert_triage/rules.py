"""The offline provider's triage: the alert's own severity label and keywords, plus history."""

from __future__ import annotations

import re
from typing import Any

OUTAGE = re.compile(r"\b(down|outage|unavailable|unreachable|data loss)\b", re.I)
# Earlier firings in the last 24 hours from which an alert counts as flapping.
FLAPPING_AT = 3


def triage(alert: dict[str, Any], earlier: int) -> dict[str, Any]:
    """A triage in the shape the model is asked for, from ``facts(payload)`` and the number
    of earlier firings in the last 24 hours."""
    label = alert["severity_label"]
    words = f"{alert['name']} {alert['summary']} {alert['description']}"
    if label in ("critical", "page") and OUTAGE.search(words):
        severity = "sev1"
    elif label in ("critical", "page", "error", "high"):
        severity = "sev2"
    elif label in ("warning", "warn", "medium"):
        severity = "sev3"
    else:
        severity = "sev4"
    flapping = earlier >= FLAPPING_AT
    where = " in ".join(part for part in (alert["service"], alert["environment"]) if part)
    what = alert["summary"] or alert["description"] or f"{alert['name']} is {alert['status']}"
    summary = f"{alert['name'] or 'An alert'} ({where or 'unknown service'}): {what}."
    if earlier:
        summary += f" It fired {earlier} time(s) before in the last 24 hours."
    if alert["runbook_url"]:
        next_step = f"Follow the runbook: {alert['runbook_url']}"
    else:
        next_step = f"Check {alert['service'] or 'the service'}'s dashboards and recent deploys"
    if flapping:
        next_step += "; the alert is flapping, so review its threshold and for-duration"
    return {"summary": summary, "severity": severity, "next_step": next_step, "flapping": flapping}
