"""Agent handlers that real worker processes run against the fake Messages API over HTTP.

Used by tests/agents/test_worker_runs.py. They have event types and a queue of their own, so
no other test's routes or workers (the session's shared worker consumes ``default``) pick up
their deliveries: only a worker started with the fake API's URL in its environment runs them.
"""

from __future__ import annotations

import uuid
from typing import Any

from handlers.context import HandlerContext
from handlers.effects import once
from handlers.errors import PermanentError
from handlers.llm import Agent
from handlers.llm import tool as llm_tool
from handlers.registry import handler

from .models import SideEffect

HTTP_AGENT_QUEUE = "agents-http"
# SideEffect.handler of every refund issue_refund makes: the test counts these rows.
REFUND_LEDGER = "refund-ledger"


def _refund(order_id: str, amount_cents: int) -> dict[str, Any]:
    """Like a payment API without idempotency keys: every call is one more refund."""
    refund = SideEffect.objects.create(key=f"re_{uuid.uuid4().hex}", handler=REFUND_LEDGER)
    return {"refund_id": refund.key, "order_id": order_id, "amount_cents": amount_cents}


@llm_tool(kind="write")
def issue_refund(order_id: str, amount_cents: int, idempotency_key: str) -> dict[str, Any]:
    """Refund part of an order to the customer.

    Args:
        order_id: The order's id, e.g. ord_7.
        amount_cents: How much to refund, in cents.
    """
    return once(idempotency_key, lambda: _refund(order_id, amount_cents))


answer_agent = Agent(
    name="test.http_agent",
    system="You answer questions about orders.",
    model="claude-sonnet-5-5",
    max_turns=2,
)
refund_agent = Agent(
    name="test.refund_agent",
    system="You refund orders when the customer asks.",
    model="claude-sonnet-5-5",
    tools=[issue_refund],
    max_turns=4,
)


# A tiny backoff: a retry that waits a second waits because the API's retry-after said so.
@handler(
    "test.http_agent",
    on=["agentrun.question"],
    max_attempts=3,
    backoff_base=0.01,
    backoff_max=0.05,
    queue=HTTP_AGENT_QUEUE,
)
def run_answer_agent(ctx: HandlerContext) -> dict[str, Any]:
    return answer_agent.run(ctx, "Answer the customer's question.").as_outcome()


# A short time limit: the lease of a killed worker's attempt runs out within seconds.
@handler(
    "test.refund_agent",
    on=["agentrun.refund_requested"],
    max_attempts=3,
    time_limit=3,
    queue=HTTP_AGENT_QUEUE,
)
def run_refund_agent(ctx: HandlerContext) -> dict[str, Any]:
    return refund_agent.run(ctx, "Refund the order if the customer asks for it.").as_outcome()


# --- One model call per event, at the model's speed -----------------------------------------
# Used by tests/pipeline/test_connection_pool.py and the agent benchmark (bench/agents.py)
# against bench.stub_model, a Messages API stand-in that answers every request after a delay.

WAITING_AGENT_QUEUE = "agents-wait"

waiting_agent = Agent(
    "test.waiting_agent",
    system="You read one event and say in a sentence whether anything needs doing.",
    max_tokens=64,
    max_turns=1,
)


@handler("test.waiting_agent", on=["test.agent.wait"], max_attempts=3, queue=WAITING_AGENT_QUEUE)
def waiting_agent_handler(ctx: HandlerContext) -> dict[str, Any]:
    return waiting_agent.run(ctx, "Does this event need anything done?").as_outcome()


# --- Model text everywhere a run puts it ------------------------------------------------------
# Used by tests/security/test_redaction.py: the answer goes into the outcome, a follow-up
# event, a log line and, with {"fail": true}, the error that dead-letters the delivery.


@handler("test.echo_agent", on=["agentrun.echo"], max_attempts=1, queue=HTTP_AGENT_QUEUE)
def run_echo_agent(ctx: HandlerContext) -> dict[str, Any]:
    text = answer_agent.run(ctx, "Answer the customer's question.").text
    ctx.logger.info("the model answered: %s", text)
    if isinstance(ctx.event.payload, dict) and ctx.event.payload.get("fail"):
        raise PermanentError(f"the model said: {text}")
    ctx.emit("agentrun.echoed", {"text": text}, partition_key=text[:40])
    return {"text": text}
