"""What an LLM call cost, from the price table (``handlers.conf.MODEL_PRICES``: its defaults,
or ``SWITCHYARD_MODEL_PRICES_JSON``).

Prices are USD per million tokens, per model: ``input``, ``output``, ``cache_write`` (tokens
written to the prompt cache) and ``cache_read``. The Messages API reports cached tokens apart
from ``input_tokens``, so the four counts add up without overlap. A model missing from the
table costs 0 and is logged once per process, so a new model shows up in the logs rather than
as silently free.
"""

from __future__ import annotations

import logging
import threading
from decimal import ROUND_HALF_UP, Decimal

from .conf import MODEL_PRICES

log = logging.getLogger("switchyard.pipeline")

MILLION = Decimal(1_000_000)
CENT_FRACTION = Decimal("0.000001")  # the Step.cost_usd column's precision

_warned: set[str] = set()
_warned_lock = threading.Lock()


def llm_cost(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_creation_tokens: int = 0,
    cache_read_tokens: int = 0,
) -> Decimal:
    """USD for one call, rounded to the micro-dollar; 0 for a model without a price."""
    prices = MODEL_PRICES.get().get(model)
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
