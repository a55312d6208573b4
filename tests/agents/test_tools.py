"""@tool: schemas from type hints and docstrings, input checks, idempotency keys."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from handlers.llm import ToolInputError, tool


@tool(kind="read")
def lookup_order(
    order_id: str,
    include_items: bool = False,
    limit: int = 10,
    ratio: float | None = None,
    tags: list[str] | None = None,
    status: Literal["open", "closed"] = "open",
) -> dict[str, Any]:
    """Look an order up by its id.

    Longer text the model does not need.

    Args:
        order_id: The shop's order id,
            as printed on the receipt.
        include_items: Whether to list the line items.
        limit: At most this many items.
    """
    return {"order_id": order_id}


def test_schema_comes_from_type_hints_and_docstring() -> None:
    assert lookup_order.name == "lookup_order"
    assert lookup_order.kind == "read"
    assert lookup_order.definition() == {
        "name": "lookup_order",
        "description": "Look an order up by its id.",
        "input_schema": {
            "type": "object",
            "properties": {
                "order_id": {
                    "type": "string",
                    "description": "The shop's order id, as printed on the receipt.",
                },
                "include_items": {
                    "type": "boolean",
                    "description": "Whether to list the line items.",
                    "default": False,
                },
                "limit": {
                    "type": "integer",
                    "description": "At most this many items.",
                    "default": 10,
                },
                "ratio": {"type": "number"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "status": {"type": "string", "enum": ["open", "closed"], "default": "open"},
            },
            "required": ["order_id"],
            "additionalProperties": False,
        },
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "missing required parameter(s): order_id"),
        ({"order_id": 7}, "order_id: expected string, got int"),
        ({"order_id": "A", "limit": True}, "limit: expected integer, got bool"),
        ({"order_id": "A", "status": "lost"}, "status: must be one of ['open', 'closed']"),
        ({"order_id": "A", "tags": ["x", 1]}, "tags[1]: expected string, got int"),
        ({"order_id": "A", "sudo": True}, "unknown parameter(s): sudo"),
        (["A"], "input must be a JSON object, got list"),
    ],
)
def test_model_input_is_checked_against_the_schema(arguments: Any, message: str) -> None:
    with pytest.raises(ToolInputError) as caught:
        lookup_order.invoke(arguments, delivery_key="evt:h")
    assert str(caught.value) == message


def test_write_tool_must_take_an_idempotency_key() -> None:
    with pytest.raises(ValueError, match="must take a keyword parameter 'idempotency_key'"):

        @tool(kind="write")
        def send_email(to: str) -> None:
            """Send an email."""


def test_unsupported_hints_are_refused_when_the_tool_is_defined() -> None:
    with pytest.raises(TypeError, match="needs a type hint"):

        @tool(kind="read")
        def untyped(x) -> None:  # type: ignore[no-untyped-def]
            """Untyped."""

    with pytest.raises(TypeError, match="not supported"):

        @tool(kind="read")
        def as_set(x: set[str]) -> None:
            """A set."""


calls: list[tuple[str, str]] = []


@tool(kind="write")
def post_comment(body: str, idempotency_key: str) -> str:
    """Post a comment on the ticket."""
    calls.append((body, idempotency_key))
    return "posted"


def test_idempotency_key_is_not_in_the_schema_and_the_model_cannot_set_it() -> None:
    assert post_comment.input_schema["properties"] == {"body": {"type": "string"}}
    with pytest.raises(ToolInputError, match="unknown parameter"):
        post_comment.invoke({"body": "hi", "idempotency_key": "mine"}, delivery_key="evt:h")


def test_idempotency_key_is_stable_per_delivery_tool_and_input() -> None:
    calls.clear()
    post_comment.invoke({"body": "hi"}, delivery_key="evt-1:agent")
    post_comment.invoke({"body": "hi"}, delivery_key="evt-1:agent")
    post_comment.invoke({"body": "bye"}, delivery_key="evt-1:agent")
    post_comment.invoke({"body": "hi"}, delivery_key="evt-2:agent")
    keys = [key for _, key in calls]
    assert keys[0] == keys[1]
    assert len({keys[0], keys[2], keys[3]}) == 3
    assert keys[0].startswith("post_comment:") and len(keys[0]) == len("post_comment:") + 64
