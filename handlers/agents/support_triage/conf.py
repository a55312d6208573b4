"""Support triage's setting, checked by ``manage.py check``: its category -> team queue map
over the defaults, e.g. ``{"bug": "platform"}`` (handlers/agents/support_triage/queues.py)."""

from __future__ import annotations

from typing import Any

from agents_project.appsettings import Setting, register, text

from . import queues


def _queues_problem(value: Any) -> str | None:
    try:
        queues.parse(str(value or ""))
    except ValueError as exc:
        return str(exc).removeprefix(queues.SETTING).lstrip(": ")
    return None


SUPPORT_QUEUES = Setting(queues.SETTING, "", text, _queues_problem)


def queue_map() -> dict[str, str]:
    """The map in force; ValueError (saying what is wrong) on a bad setting."""
    return queues.parse(str(SUPPORT_QUEUES.raw() or ""))


register("the built-in agent support.triage", [SUPPORT_QUEUES])
