"""Handlers used by the tests. They record every call and key their effects."""

from __future__ import annotations

import os
import time
from typing import Any

from handlers.context import HandlerContext
from handlers.llm import Agent
from handlers.llm import tool as llm_tool
from handlers.registry import PermanentError, TransientError, handler

from . import (
    agent_handlers,  # noqa: F401  (registers the real-worker agent handlers)
    approval_handlers,  # noqa: F401  (the agent whose write waits for approval)
    breaker_handlers,  # noqa: F401  (the circuit-breaker tests' handler)
    fanout_handlers,  # noqa: F401  (handlers that emit in a loop or in bursts)
    flow_handlers,  # noqa: F401  (the flow-control tests' handler)
    limited_handlers,  # noqa: F401  (the rate-limit tests' handler)
    state_handlers,  # noqa: F401  (handlers that keep ctx.state)
)
from .models import HandlerCall, SideEffect


def record(ctx: HandlerContext) -> bool:
    """Log the call; apply the effect once per idempotency key. True if applied now."""
    HandlerCall.objects.create(handler=ctx.handler, event_id=ctx.event.id, attempt=ctx.attempt)
    _, created = SideEffect.objects.get_or_create(
        key=ctx.idempotency_key, defaults={"handler": ctx.handler}
    )
    return created


@handler("test.rebook", on=["scenario.reservation.cancelled"], max_attempts=3, backoff_base=0.2)
def rebook(ctx: HandlerContext) -> dict[str, Any]:
    applied = record(ctx)
    return {"rebooked": ctx.event.payload.get("reservation"), "applied": applied}


@handler("test.notify", on=["scenario.reservation.cancelled"], max_attempts=3, backoff_base=0.2)
def notify(ctx: HandlerContext) -> dict[str, Any]:
    if ctx.event.payload.get("fail") == "permanent":
        HandlerCall.objects.create(handler=ctx.handler, event_id=ctx.event.id, attempt=ctx.attempt)
        raise PermanentError("guest record is incomplete")
    applied = record(ctx)
    return {"notified": ctx.event.payload.get("guest"), "applied": applied}


@handler("test.flaky", on=["test.flaky"], max_attempts=5, backoff_base=1.0, backoff_max=30)
def flaky(ctx: HandlerContext) -> dict[str, Any]:
    """Fails with TransientError on the first two attempts."""
    HandlerCall.objects.create(handler=ctx.handler, event_id=ctx.event.id, attempt=ctx.attempt)
    if ctx.attempt < 3:
        raise TransientError(f"upstream unavailable (attempt {ctx.attempt})")
    return {"attempt": ctx.attempt}


@handler("test.slow", on=["test.slow"], max_attempts=3, time_limit=2, queue="chaos")
def slow(ctx: HandlerContext) -> dict[str, Any]:
    """Applies its effect, then (first attempt only) sleeps long enough to be killed."""
    applied = record(ctx)
    if ctx.attempt == 1:
        time.sleep(float(ctx.event.payload.get("sleep", 30)))
    return {"applied": applied, "attempt": ctx.attempt}


@handler("test.long", on=["test.long"], max_attempts=3, time_limit=120, queue="chaos")
def long(ctx: HandlerContext) -> dict[str, Any]:
    """Applies its effect, then sleeps ``sleep`` seconds well within its time limit."""
    applied = record(ctx)
    time.sleep(float(ctx.event.payload.get("sleep", 5)))
    return {"applied": applied, "attempt": ctx.attempt}


@handler("test.chaos", on=["test.chaos"], max_attempts=3, queue="chaos")
def chaos(ctx: HandlerContext) -> dict[str, Any]:
    applied = record(ctx)
    return {"applied": applied}


@handler("test.noop", on=["test.noop"], max_attempts=3, queue="chaos")
def noop(ctx: HandlerContext) -> None:
    """Does nothing: what the pipeline itself costs per delivery (bench/delivery.py)."""


@handler("test.stamp", on=["test.stamp"], max_attempts=1, queue="dispatch")
def stamp(ctx: HandlerContext) -> dict[str, Any]:
    """Says when it started: dispatch latency from the event's commit (bench/dispatch.py)."""
    return {"started": time.time()}


@handler("test.emitter", on=["test.emit"], max_attempts=2)
def emitter(ctx: HandlerContext) -> dict[str, Any]:
    record(ctx)
    ctx.emit("test.emitted", {"parent": ctx.event.id})
    return {"emitted": 1}


@handler("test.unexpected", on=["test.unexpected"], max_attempts=2, backoff_base=0.01)
def unexpected(ctx: HandlerContext) -> None:
    raise ValueError("surprise")


@handler("test.retry_after", on=["test.retry_after"], max_attempts=3)
def retry_after(ctx: HandlerContext) -> None:
    raise TransientError("rate limited", retry_after=42)


@handler("test.bad_outcome", on=["test.bad_outcome"], max_attempts=3)
def bad_outcome(ctx: HandlerContext) -> dict[str, Any]:
    return {"when": object()}


@handler("test.always", on=["test.always"], max_attempts=12, backoff_base=0.01, backoff_max=0.05)
def always(ctx: HandlerContext) -> None:
    """Fails every attempt: exercises long retry budgets."""
    HandlerCall.objects.create(handler=ctx.handler, event_id=ctx.event.id, attempt=ctx.attempt)
    raise TransientError("still failing")


@handler("test.exit", on=["test.exit"], max_attempts=2, backoff_base=0.05, queue="chaos")
def exits(ctx: HandlerContext) -> None:
    """Calls sys.exit() like a command-line library on bad input."""
    HandlerCall.objects.create(handler=ctx.handler, event_id=ctx.event.id, attempt=ctx.attempt)
    raise SystemExit(3)


@handler("test.child", on=["test.emitted"], max_attempts=2)
def child(ctx: HandlerContext) -> dict[str, Any]:
    record(ctx)
    ctx.logger.info("handled a follow-up of %s", ctx.event.payload.get("parent"))
    return {"parent": ctx.event.payload.get("parent")}


@handler("test.emit_then_fail", on=["test.emit_then_fail"], max_attempts=1)
def emit_then_fail(ctx: HandlerContext) -> None:
    ctx.emit("test.emitted", {"parent": ctx.event.id})
    raise PermanentError("changed my mind")


@handler("test.nul_error", on=["test.nul_error"], max_attempts=1)
def nul_error(ctx: HandlerContext) -> None:
    raise ValueError("upstream said \x00 and \ud800")


@handler("test.nul_outcome", on=["test.nul_outcome"], max_attempts=3)
def nul_outcome(ctx: HandlerContext) -> dict[str, Any]:
    return {"text": "a\x00b"}


@handler("test.huge_outcome", on=["test.huge_outcome"], max_attempts=3)
def huge_outcome(ctx: HandlerContext) -> dict[str, Any]:
    return {"text": "x" * 300_000}


@handler("test.slow_prefork", on=["test.slow_prefork"], max_attempts=3, time_limit=8, queue="chaos")
def slow_prefork(ctx: HandlerContext) -> dict[str, Any]:
    """Like test.slow, with room before the soft time limit so a test can kill it first."""
    return slow(ctx)


# --- Agents (handlers.llm), for the trace tests ------------------------------------------------

ORDERS = {"ord_7": {"status": "shipped", "carrier": "DHL"}}


@llm_tool(kind="read")
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look an order up by id.

    Args:
        order_id: The order's id, e.g. ord_7.
    """
    return {"order_id": order_id, **ORDERS.get(order_id, {"status": "unknown"})}


@llm_tool(kind="read")
def read_setting(name: str) -> str:
    """Read a configuration value (a careless tool: it would leak secrets if they were stored).

    Args:
        name: The environment variable's name.
    """
    return f"{name}={os.environ.get(name, '')}"


order_agent = Agent(
    name="test.agent",
    system="You answer questions about orders. Look orders up before you answer.",
    model="claude-sonnet-5-5",
    tools=[lookup_order],
    max_turns=4,
)
careless_agent = Agent(
    name="test.careless_agent",
    system="You report configuration.",
    model="claude-sonnet-5-5",
    tools=[lookup_order, read_setting],
    max_turns=4,
)


@handler("test.agent", on=["test.agent"], max_attempts=3)
def run_order_agent(ctx: HandlerContext) -> dict[str, Any]:
    return order_agent.run(ctx, "Say where the order in this event is.").as_outcome()


@handler("test.careless_agent", on=["test.careless_agent"], max_attempts=1)
def run_careless_agent(ctx: HandlerContext) -> dict[str, Any]:
    return careless_agent.run(ctx, "Answer the request in this event.").as_outcome()


budget_agent = Agent(
    name="test.budget_agent",
    system="You answer questions about orders. Look orders up before you answer.",
    model="claude-sonnet-5-5",
    tools=[lookup_order],
    max_turns=6,
    max_tokens_per_run=1000,
)


@handler("test.budget_agent", on=["test.budget_agent"], max_attempts=3)
def run_budget_agent(ctx: HandlerContext) -> dict[str, Any]:
    return budget_agent.run(ctx, "Say where the order in this event is.").as_outcome()
