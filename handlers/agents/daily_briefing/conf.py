"""The daily briefing's setting, checked by ``manage.py check``: who it is emailed to
(comma-separated; empty: the briefing is only the delivery's outcome)."""

from __future__ import annotations

from typing import Any

from agents_project.appsettings import Setting, comma_list, register


def _recipients_problem(value: Any) -> str | None:
    if not isinstance(value, list | tuple):
        return "must be a list of email addresses"
    for address in value:
        text = str(address)
        if text.count("@") != 1 or any(c.isspace() or c in "<>," for c in text):
            return f"{text!r} is not an email address"
    return None


BRIEFING_RECIPIENTS: Setting[list[str]] = Setting(
    "SWITCHYARD_BRIEFING_RECIPIENTS", [], comma_list, _recipients_problem
)

register("the built-in agent briefing.daily", [BRIEFING_RECIPIENTS])
