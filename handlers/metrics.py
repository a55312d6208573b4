"""The agents' Prometheus metrics: tokens and cost of every model call, counted as each step is
stored (handlers/traces.py), summed over processes like the pipeline's (events/metrics.py)."""

from __future__ import annotations

from agents_project.prometheus import Counter

TOKENS = Counter(
    "switchyard_agent_tokens_total",
    "Tokens of agents' model calls, by handler and kind (input, output, cache_write, cache_read).",
    ["handler", "kind"],
)
COST = Counter(
    "switchyard_agent_cost_usd_total",
    "Cost in USD of agents' model calls, by handler (from the price table).",
    ["handler"],
)
TOKEN_COLUMNS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_write": "cache_creation_tokens",
    "cache_read": "cache_read_tokens",
}


def count(handler: str, row: dict[str, object]) -> None:
    """Count one stored LLM step (``row``: its Step columns)."""
    for kind, column in TOKEN_COLUMNS.items():
        value = row.get(column)
        if isinstance(value, int) and value > 0:
            TOKENS.labels(handler, kind).inc(value)
    cost = row.get("cost_usd")
    if cost:
        COST.labels(handler).inc(float(cost))  # type: ignore[arg-type]
