"""Which model an agent calls: an operator's override per handler (AgentConfig, edited in the
admin) wins over the agent's own ``model=`` and ``SWITCHYARD_AGENT_MODEL``."""

from __future__ import annotations

import re
import typing

from events.lookups import Memo

from .models import AgentConfig

MODEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_:@]{1,99}$")


def model_problem(name: str) -> str | None:
    """Why ``name`` should not be saved as a model, if it should not: a malformed name, or
    one the installed SDK lists as deprecated."""
    from anthropic._data import DEPRECATED_MODELS

    if not MODEL_NAME_RE.fullmatch(name):
        return "not a model name: lower-case letters, digits and . - _ : @ only"
    if name in DEPRECATED_MODELS:
        return f"{name} is deprecated in the installed anthropic SDK; choose a current model"
    return None


def known_models() -> list[str]:
    """The models the installed SDK knows and does not list as deprecated."""
    from anthropic._data import DEPRECATED_MODELS
    from anthropic.types.model import Model

    names = typing.get_args(typing.get_args(Model)[0])
    return sorted(str(n) for n in names if n not in DEPRECATED_MODELS)


# Per handler, the override and whether a budget is set, for SWITCHYARD_LOOKUP_CACHE_SECONDS
# (events.lookups): every agent delivery asks, and an admin edit reaches running workers within
# those seconds, as a route's does.
SETTINGS: Memo[tuple[str | None, bool]] = Memo()


class RunSettings:
    """An agent run's view of the admin's settings for its handler: the model override and
    whether a daily budget is set, read together in one query when the run first asks (kept
    per process for ``SETTINGS``' seconds).

    The first budget check of a run uses that read (no budget set: nothing more to ask);
    every later check asks ``handlers.budgets`` again, so a limit changed in the admin still
    applies from the next LLM call of a longer run.
    """

    def __init__(self, handler: str) -> None:
        self.handler = handler
        self._read: tuple[str | None, bool] | None = None
        self._budget_checks = 0

    def _settings(self) -> tuple[str | None, bool]:
        if self._read is None:
            self._read = SETTINGS.get(self.handler, self._load) or (None, False)
        return self._read

    def _load(self) -> tuple[str | None, bool]:
        from django.db import connection

        from .models import AgentBudget

        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT (SELECT model FROM {AgentConfig._meta.db_table} "  # noqa: S608
                "WHERE handler = %s LIMIT 1), "
                f"EXISTS (SELECT 1 FROM {AgentBudget._meta.db_table} "
                "WHERE handler = %s AND enabled)",
                [self.handler, self.handler],
            )
            model, budgeted = cursor.fetchone()
        return (model or None, bool(budgeted))

    def model_override(self) -> str | None:
        return self._settings()[0]

    def budget_check(self) -> str | None:
        from .budgets import check

        self._budget_checks += 1
        if self._budget_checks == 1 and not self._settings()[1]:
            return None
        return check(self.handler)
