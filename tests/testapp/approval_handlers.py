"""An agent whose one write waits for approval (tests/agents/test_approvals.py)."""

from __future__ import annotations

from typing import Any

from handlers.context import HandlerContext
from handlers.effects import once
from handlers.llm import Agent, OfflinePlan, tool
from handlers.registry import handler

from .models import SideEffect

# Set by a test to make every refund fail the way an outage would.
PAYMENTS_DOWN = {"down": False}


@tool(
    kind="write",
    requires_approval=True,
    preview=lambda a: f"Refund {a['amount']} cents on order {a['order']}",
)
def refund(order: str, amount: int, idempotency_key: str) -> dict[str, Any]:
    """Refund an order.

    Args:
        order: The order id.
        amount: Cents to refund.
    """

    def act() -> dict[str, Any]:
        if PAYMENTS_DOWN["down"]:
            raise ConnectionError("payments API unreachable")
        SideEffect.objects.create(key=idempotency_key, handler="test.refunder")
        return {"refunded": order, "amount": amount}

    result: dict[str, Any] = once(idempotency_key, act)
    return result


def offline_plan(ctx: HandlerContext) -> OfflinePlan:
    order = str(ctx.event.payload.get("order", "?"))
    return OfflinePlan(
        text=f"asked to refund {order}", calls=[("refund", {"order": order, "amount": 500})]
    )


refunder = Agent(
    name="test.refunder",
    system="You handle refund requests.",
    tools=[refund],
    max_turns=3,
    offline=offline_plan,
)


@handler("test.refunder", on=["test.refund_requested"], max_attempts=2)
def run_refunder(ctx: HandlerContext) -> dict[str, Any]:
    return refunder.run(ctx, "Refund the order if the request is reasonable.").as_outcome()
