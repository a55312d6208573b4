"""What an Alertmanager-style payload says, read defensively (every field may be missing)."""

from __future__ import annotations

from typing import Any


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def facts(payload: Any) -> dict[str, Any]:
    """The alert's name, status, labels and annotations that triage needs.

    Common labels and annotations first (the whole group shares them), then the first
    alert's own.
    """
    payload = _dict(payload)
    alerts = [a for a in payload.get("alerts") or [] if isinstance(a, dict)]
    first = alerts[0] if alerts else {}
    labels = {**_dict(first.get("labels")), **_dict(payload.get("commonLabels"))}
    notes = {**_dict(first.get("annotations")), **_dict(payload.get("commonAnnotations"))}
    name = _text(_dict(payload.get("groupLabels")).get("alertname")) or _text(
        labels.get("alertname")
    )
    return {
        "name": name,
        "status": _text(payload.get("status")) or _text(first.get("status")) or "firing",
        "severity_label": _text(labels.get("severity")).lower(),
        "service": _text(labels.get("service")) or _text(labels.get("job")),
        "environment": _text(labels.get("namespace")) or _text(labels.get("env")),
        "summary": _text(notes.get("summary")),
        "description": _text(notes.get("description")),
        "runbook_url": _text(notes.get("runbook_url")),
        "alerts": len(alerts),
    }
