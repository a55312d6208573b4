"""What an LLM call cost, from the price table in settings (``SWITCHYARD_MODEL_PRICES``).

Prices are USD per million tokens, per model: ``input``, ``output``, ``cache_write`` (tokens
written to the prompt cache) and ``cache_read``. The Messages API reports cached tokens apart
from ``input_tokens``, so the four counts add up without overlap. A model missing from the
table costs 0 and is logged once per process, so a new model shows up in the logs rather than
as silently free.

This module is imported by settings (to parse the table from the environment): it imports no
models.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger("switchyard.pipeline")

PRICE_KEYS = ("input", "output", "cache_write", "cache_read")
MILLION = Decimal(1_000_000)
CENT_FRACTION = Decimal("0.000001")  # the Step.cost_usd column's precision

_warned: set[str] = set()
_warned_lock = threading.Lock()


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


def llm_cost(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_creation_tokens: int = 0,
    cache_read_tokens: int = 0,
) -> Decimal:
    """USD for one call, rounded to the micro-dollar; 0 for a model without a price."""
    prices = settings.SWITCHYARD_MODEL_PRICES.get(model)
    if prices is None:
        with _warned_lock:
            first = model not in _warned
            _warned.add(model)
        if first:
            log.warning(
                "no price for model %r in SWITCHYARD_MODEL_PRICES; its calls are costed at 0",
                model,
            )
        return Decimal(0)
    total = (
        input_tokens * Decimal(str(prices["input"]))
        + output_tokens * Decimal(str(prices["output"]))
        + cache_creation_tokens * Decimal(str(prices["cache_write"]))
        + cache_read_tokens * Decimal(str(prices["cache_read"]))
    ) / MILLION
    return total.quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)
