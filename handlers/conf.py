"""The agent runtime's settings, each read through here (``conf.AGENT_MODEL.get()``) and
checked by ``manage.py check``; each comes from the environment variable of its name unless
the settings module sets it. The built-in agents keep their own settings in their conf.py."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from agents_project.appsettings import Setting, at_least, integer, number, one_of, register, text

PRICE_KEYS = ("input", "output", "cache_write", "cache_read")
# Anthropic's published list prices (platform docs, "Models & pricing", read 2026-11-22): cache
# writes are the 5-minute rate (1.25x input), cache reads 0.1x input. Check them against your
# own invoice; a model not listed is costed at 0 with a warning (handlers/costs.py).
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "claude-opus-5-5": {"input": 4.0, "output": 20.0, "cache_write": 5.0, "cache_read": 0.4},
    "claude-sonnet-5-5": {"input": 2.0, "output": 10.0, "cache_write": 2.5, "cache_read": 0.2},
    # Haiku 5.5 is listed "from" this price; heavier use may cost more.
    "claude-haiku-5-5": {"input": 0.1, "output": 0.5, "cache_write": 0.125, "cache_read": 0.01},
    "claude-opus-5": {"input": 5.0, "output": 25.0, "cache_write": 6.25, "cache_read": 0.5},
    "claude-sonnet-4-6": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.3},
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_write": 1.25, "cache_read": 0.1},
}


def parse_prices(
    raw: str, *, name: str = "SWITCHYARD_MODEL_PRICES_JSON"
) -> dict[str, dict[str, float]]:
    """Parse a JSON price table strictly: every model maps to exactly the four prices, each a
    finite number of at least 0. Anything else raises ImproperlyConfigured naming the fault."""
    try:
        table = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(table, dict) or not table:
        raise ImproperlyConfigured(
            f'{name} must be a non-empty JSON object: {{"model": {{"input": 3, "output": 15, '
            '"cache_write": 3.75, "cache_read": 0.3}}'
        )
    prices: dict[str, dict[str, float]] = {}
    for model, entry in table.items():
        if not model.strip():
            raise ImproperlyConfigured(f"{name}: a model name is empty")
        if not isinstance(entry, dict):
            raise ImproperlyConfigured(f"{name}: {model!r} must map to an object of prices")
        missing = [key for key in PRICE_KEYS if key not in entry]
        unknown = sorted(set(entry) - set(PRICE_KEYS))
        if missing or unknown:
            raise ImproperlyConfigured(
                f"{name}: {model!r} needs exactly {', '.join(PRICE_KEYS)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
            )
        for key in PRICE_KEYS:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ImproperlyConfigured(f"{name}: {model!r} {key} is not a number: {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ImproperlyConfigured(f"{name}: {model!r} {key} must be 0 or more: {value!r}")
        prices[model] = {key: float(entry[key]) for key in PRICE_KEYS}
    return prices


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a number JSON allows")


def _provider_default() -> str:
    # The demo works with no key: the offline provider answers from the event's content.
    return "anthropic" if os.environ.get("ANTHROPIC_API_KEY", "").strip() else "offline"


def _prices_problem(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must map each model to its four prices"
    return None


# "anthropic" calls the Messages API; "offline" answers deterministically from the event's
# content with no network (the default when no ANTHROPIC_API_KEY is set).
AGENT_PROVIDER = Setting(
    "SWITCHYARD_AGENT_PROVIDER", _provider_default, text, one_of("anthropic", "offline")
)
# The model an agent uses unless it names its own (or an operator overrides it in the admin).
AGENT_MODEL = Setting("SWITCHYARD_AGENT_MODEL", "claude-sonnet-5-5", text)
# Seconds for one Messages API request (the SDK's default is 600 s).
ANTHROPIC_TIMEOUT = Setting("ANTHROPIC_TIMEOUT", 60.0, number, at_least(0.1))
# The SDK's own retries per request; the pipeline retries the whole delivery, so keep it low.
AGENT_MAX_RETRIES = Setting("SWITCHYARD_AGENT_MAX_RETRIES", 1, integer, at_least(0))
# Input + output tokens one agent run may use unless the Agent sets max_tokens_per_run.
AGENT_MAX_TOKENS_PER_RUN = Setting(
    "SWITCHYARD_AGENT_MAX_TOKENS_PER_RUN", 200_000, integer, at_least(1)
)
# USD per million tokens per model (handlers/costs.py has the defaults and their source);
# SWITCHYARD_MODEL_PRICES_JSON replaces the whole table.
MODEL_PRICES = Setting(
    "SWITCHYARD_MODEL_PRICES",
    DEFAULT_PRICES,
    parse_prices,
    _prices_problem,
    env="SWITCHYARD_MODEL_PRICES_JSON",
)

register(
    "the agent runtime (handlers)",
    [
        AGENT_PROVIDER,
        AGENT_MODEL,
        ANTHROPIC_TIMEOUT,
        AGENT_MAX_RETRIES,
        AGENT_MAX_TOKENS_PER_RUN,
        MODEL_PRICES,
    ],
)
