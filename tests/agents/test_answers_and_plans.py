"""json_answer (reading the built-in agents' structured answers), requires_approval
declarations and offline plans."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.context import ApprovalRequest, ApprovalTicket
from handlers.llm import (
    Agent,
    AnswerFormatError,
    OfflinePlan,
    current_event,
    get_agent,
    json_answer,
    tool,
)


@pytest.mark.parametrize(
    "text",
    [
        '{"category": "Billing", "priority": 2}',
        'Here is my answer:\n```json\n{"category": "billing", "priority": 2}\n```\nThanks.',
        'Thinking {not json} then {"category": "billing", "priority": 2} done',
    ],
)
def test_json_answer_finds_the_object(text: str) -> None:
    answer = json_answer(
        text, required={"category": str, "priority": int}, choices={"category": {"billing"}}
    )
    assert answer == {"category": "billing", "priority": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no json here", "holds no JSON object"),
        ('{"priority": 2}', "lacks 'category'"),
        ('{"category": "billing", "priority": "high"}', "'priority' is str"),
        ('{"category": "billing", "priority": true}', "'priority' is bool"),
        ('{"category": "sales", "priority": 2}', "'category' is 'sales', not one of ['billing']"),
        ("[1, 2]", "holds no JSON object"),
    ],
)
def test_json_answer_refuses_a_bad_answer(text: str, message: str) -> None:
    with pytest.raises(AnswerFormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        json_answer(
            text, required={"category": str, "priority": int}, choices={"category": {"billing"}}
        )


def test_only_a_write_tool_can_require_approval() -> None:
    with pytest.raises(ValueError, match="only a write tool can require approval"):

        @tool(kind="read", requires_approval=True)
        def peek(order: str) -> str:
            """Peek."""
            return order


def test_agents_are_found_by_name() -> None:
    agent = Agent(name="test.lookup_by_name", system="s")
    assert get_agent("test.lookup_by_name") is agent
    assert get_agent("test.nobody") is None


@tool(kind="write", requires_approval=True)
def wire_money(to: str, cents: int, idempotency_key: str) -> str:
    """Send money.

    Args:
        to: The account.
        cents: How much.
    """
    raise AssertionError("a write that needs approval must not run during the run")


@tool(kind="read")
def balance(account: str) -> int:
    """An account's balance."""
    return 100


def test_an_offline_plan_runs_through_the_same_gates(settings: Any, make_ctx: Any) -> None:
    """Allow-list, input checks and approvals apply to planned calls as to a model's."""
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    agent = Agent(
        name="test.planner",
        system="s",
        tools=[balance, wire_money],
        offline=lambda ctx: OfflinePlan(
            text="planned",
            calls=[
                ("balance", {"account": "acc_1"}),
                ("delete_everything", {}),
                ("wire_money", {"to": "acc_2"}),
                ("wire_money", {"to": "acc_2", "cents": 5}),
            ],
        ),
    )
    asked: list[ApprovalRequest] = []

    def request_approval(req: ApprovalRequest) -> ApprovalTicket:
        asked.append(req)
        return ApprovalTicket(id=41, status="pending")

    steps: list[dict[str, Any]] = []
    ctx = make_ctx(steps=steps)
    ctx.request_approval = request_approval

    result = agent.run(ctx, "do it")

    assert result.text == "[offline provider] planned"
    assert result.provider == "offline"
    tools = [(s["name"], s.get("output"), s.get("error")) for s in result.steps[1:]]
    assert tools[0] == ("balance", "100", None)
    assert tools[1][2].startswith("tool 'delete_everything' is not available")
    assert tools[2][2] == "invalid input: missing required parameter(s): cents"
    assert '"status": "pending"' in tools[3][1]
    assert [(r.tool, dict(r.input)) for r in asked] == [("wire_money", {"to": "acc_2", "cents": 5})]
    assert asked[0].idempotency_key == wire_money.idempotency_key(
        ctx.idempotency_key, {"to": "acc_2", "cents": 5}
    )
    assert result.approvals == [{"id": 41, "tool": "wire_money", "status": "pending"}]
    assert steps == result.steps  # every step was handed to record_step


def test_a_write_needing_approval_is_refused_where_none_can_be_asked(
    settings: Any, make_ctx: Any
) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    agent = Agent(
        name="test.no_approvals",
        system="s",
        tools=[wire_money],
        offline=lambda ctx: OfflinePlan(text="t", calls=[("wire_money", {"to": "a", "cents": 1})]),
    )
    result = agent.run(make_ctx(), "do it")
    assert result.steps[1]["error"] == (
        "this action needs a person's approval and none can be asked for here"
    )


@tool(kind="read")
def which_event() -> str:
    """The id of the event this run handles."""
    return current_event().id


def test_tools_see_the_event_of_their_run_and_only_during_it(settings: Any, make_ctx: Any) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    agent = Agent(
        name="test.which_event",
        system="s",
        tools=[which_event],
        offline=lambda ctx: OfflinePlan(text="t", calls=[("which_event", {})]),
    )
    ctx = make_ctx(event_id="5b0f6c1e-0000-4000-8000-0000000000aa")

    assert agent.run(ctx, "go").steps[1]["output"] == ctx.event.id
    with pytest.raises(RuntimeError, match="no agent run is calling this tool"):
        current_event()
