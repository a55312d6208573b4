"""The offline provider's review: keyword and size rules over the webhook payload alone."""

from __future__ import annotations

import re
from typing import Any

# Words in a PR's title, description or branch that call for a careful review.
SENSITIVE = re.compile(
    r"\b(migrations?|auth\w*|login|passwords?|secrets?|tokens?|payments?|billing|crypto\w*|"
    r"security|permissions?|delete|drop)\b",
    re.IGNORECASE,
)
LARGE_CHANGE = 500
MEDIUM_CHANGE = 100
MANY_FILES = 10


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def review(payload: dict[str, Any], event_type: str) -> dict[str, Any]:
    """A review in the shape the model is asked for (see prompt.INSTRUCTIONS)."""
    pr = as_dict(payload.get("pull_request"))
    title = str(pr.get("title") or "").strip()
    body = str(pr.get("body") or "").strip()
    head = str(as_dict(pr.get("head")).get("ref") or "?")
    base = str(as_dict(pr.get("base")).get("ref") or "?")
    additions, deletions, files = (
        _int(pr.get(k)) for k in ("additions", "deletions", "changed_files")
    )
    changed = additions + deletions
    hits = sorted({m.lower() for m in SENSITIVE.findall(f"{title}\n{body}\n{head}")})

    if hits or changed > LARGE_CHANGE:
        risk = "high"
    elif changed > MEDIUM_CHANGE or files > MANY_FILES:
        risk = "medium"
    else:
        risk = "low"
    reasons = [f"{files} file(s) changed, +{additions} -{deletions} lines"]
    if hits:
        reasons.append(f"the title, description or branch mentions: {', '.join(hits)}")
    if changed > LARGE_CHANGE:
        reasons.append(f"a large change (over {LARGE_CHANGE} lines)")
    if event_type.endswith(".synchronize"):
        reasons.append("new commits were pushed; earlier review comments may be out of date")

    checklist = [
        "Read the full diff: this offline review saw only the title, description and counts",
        "Check that tests cover the changed behaviour",
    ]
    if hits:
        checklist.append("Ask an owner of the sensitive area to review it")
    if any(hit.startswith("migration") for hit in hits):
        checklist.append("Check the migration is reversible and safe on a large table")
    if not body:
        checklist.append("Ask the author for a description of the change and why")
    if pr.get("draft"):
        checklist.append("It is a draft: confirm the author wants a review yet")

    summary = f"{title or 'Untitled pull request'} ({head} into {base})."
    return {"risk": risk, "summary": summary, "reasons": reasons, "checklist": checklist}
