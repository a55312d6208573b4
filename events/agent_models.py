"""Which model an agent calls: an operator's override per handler (AgentConfig, edited in the
admin) wins over the agent's own ``model=`` and ``SWITCHYARD_AGENT_MODEL``."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable

from .models import AgentConfig

MODEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_:@]{1,99}$")


def override_reader(handler: str) -> Callable[[], str | None]:
    """``ctx.model_override`` for one handler: one query, made only when an agent runs."""

    def read() -> str | None:
        model = AgentConfig.objects.filter(handler=handler).values_list("model", flat=True)
        return next(iter(model), "") or None

    return read


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
