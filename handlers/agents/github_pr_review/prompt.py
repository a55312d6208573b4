"""What the reviewer is told, and how its answer is read (the same for both providers)."""

from __future__ import annotations

from typing import Any

from handlers.llm import AnswerFormatError, json_answer

RISKS = ("low", "medium", "high")
MAX_ITEMS = 8
MAX_ITEM_CHARS = 300

SYSTEM = """\
You review GitHub pull requests for a software team before a person does. You give a short
risk assessment and a checklist the human reviewer can work through. You never approve,
merge or block anything; your answer becomes a comment on the pull request.

Risk:
- high: touches authentication, authorisation, payments, secrets, cryptography, database
  migrations or data deletion, or is large (over about 500 changed lines) with little test
  change;
- medium: changes behaviour in application code, dependencies or configuration, or is
  mid-sized without tests;
- low: documentation, comments, tests only, or small, contained changes.
"""

INSTRUCTIONS = """\
Review the pull request in the event below. If the tools work, call list_changed_files, then
get_diff for the files that matter most (at most five). If they say the GitHub API is not
available, review from the payload alone (title, body, branch names, line counts).

Answer with one JSON object and nothing else:
{"risk": "low" | "medium" | "high",
 "summary": "one or two sentences on what the change does",
 "reasons": ["why this risk, one short point each", ...],
 "checklist": ["a concrete thing the reviewer should check", ...]}
Give at most 5 reasons and at most 6 checklist items.
"""

REQUIRED: dict[str, type | tuple[type, ...]] = {
    "risk": str,
    "summary": str,
    "reasons": list,
    "checklist": list,
}


def parse_answer(text: str) -> dict[str, Any]:
    """The structured review from the final text (a model's, or the offline plan's)."""
    answer = json_answer(text, required=REQUIRED, choices={"risk": RISKS})
    return {
        "risk": answer["risk"],
        "summary": answer["summary"].strip()[: MAX_ITEM_CHARS * 2],
        "reasons": _strings(answer, "reasons"),
        "checklist": _strings(answer, "checklist"),
    }


def _strings(answer: dict[str, Any], name: str) -> list[str]:
    items = answer[name]
    if not all(isinstance(item, str) for item in items):
        raise AnswerFormatError(f"the answer's {name!r} must be a list of strings: {items!r:.200}")
    cleaned = [item.strip()[:MAX_ITEM_CHARS] for item in items if item.strip()]
    if not cleaned:
        raise AnswerFormatError(f"the answer's {name!r} is empty")
    return cleaned[:MAX_ITEMS]
