"""An agent run keeps to its attempt's time limit under the threads pool, which cannot stop a
running thread: no model or tool call starts after the limit, and a model request's timeout is
bounded by the time left. The delivery is then retried (TimeLimitExceeded is transient)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from events.delivery import execute
from events.models import Delivery, DeliveryStatus, Route, Source
from events.publish import publish
from handlers.errors import TimeLimitExceeded, TransientError
from handlers.llm import Agent, tool

from .conftest import FakeMessagesAPI

CALLS: list[str] = []


@tool(kind="read")
def slow_lookup(key: str) -> str:
    """Look something up, slowly.

    Args:
        key: What to look up.
    """
    CALLS.append(key)
    time.sleep(0.6)
    return "found"


agent = Agent(name="test.timed", system="You look things up.", tools=[slow_lookup], max_turns=4)


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()


def test_time_limit_exceeded_is_transient() -> None:
    assert issubclass(TimeLimitExceeded, TransientError)


def test_a_run_whose_time_is_up_makes_no_model_call(
    fake_api: FakeMessagesAPI, make_ctx: Any
) -> None:
    ctx = make_ctx()
    ctx.deadline = time.monotonic() - 0.1
    fake_api.text("never asked")

    with pytest.raises(TimeLimitExceeded, match="reached its time limit before model call 1"):
        agent.run(ctx, "Look it up.")
    assert fake_api.requests == []


def test_no_model_or_tool_call_starts_after_the_limit(
    fake_api: FakeMessagesAPI, make_ctx: Any
) -> None:
    # given the model asks for two slow lookups in one turn, then would answer
    fake_api.reply(
        [
            {"type": "tool_use", "id": "t1", "name": "slow_lookup", "input": {"key": "a"}},
            {"type": "tool_use", "id": "t2", "name": "slow_lookup", "input": {"key": "b"}},
        ],
        stop_reason="tool_use",
    )
    fake_api.text("done")
    ctx = make_ctx()
    ctx.deadline = time.monotonic() + 0.4

    # when the first lookup takes the run past its limit
    with pytest.raises(TimeLimitExceeded, match="before tool 'slow_lookup'"):
        agent.run(ctx, "Look both up.")

    # then the second lookup and the next model call never happen
    assert CALLS == ["a"]
    assert len(fake_api.requests) == 1


def test_a_model_call_is_cut_at_the_time_left(
    fake_api: FakeMessagesAPI, make_ctx: Any, settings: Any
) -> None:
    settings.ANTHROPIC_TIMEOUT = 30.0
    fake_api.text("too late", delay=5)
    ctx = make_ctx()
    ctx.deadline = time.monotonic() + 0.5
    started = time.monotonic()

    with pytest.raises(TimeLimitExceeded, match="during model call 1"):
        agent.run(ctx, "Answer.")

    assert time.monotonic() - started < 2.0  # not the 30 s timeout, nor a retry
    assert len(fake_api.requests) == 1


def test_time_bounded_model_calls_share_one_client_without_retries(
    fake_api: FakeMessagesAPI, make_ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under the default settings (a 60 s time limit, a 60 s request timeout) every call is
    # bounded by the time left. A copy of the SDK's client per call would cost more than the
    # request: the process keeps one copy without retries, made with the client.
    import anthropic

    from handlers.llm.client import get_client

    copies: list[dict[str, Any]] = []
    copy = anthropic.Anthropic.copy

    def counted(self: anthropic.Anthropic, **options: Any) -> anthropic.Anthropic:
        copies.append(options)
        return copy(self, **options)

    monkeypatch.setattr(anthropic.Anthropic, "copy", counted)
    monkeypatch.setattr(anthropic.Anthropic, "with_options", counted)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-another-configuration")  # a fresh client
    for _ in range(3):
        fake_api.text("done")
        ctx = make_ctx()
        ctx.deadline = time.monotonic() + 20
        agent.run(ctx, "Answer.")

    assert copies == [{"max_retries": 0}]
    assert get_client(retries=False).max_retries == 0
    assert get_client(retries=False) is get_client(retries=False)
    assert len(fake_api.requests) == 3


@pytest.mark.django_db
def test_the_pipeline_gives_the_run_its_routes_time_limit(
    fake_api: FakeMessagesAPI, routes: None, settings: Any
) -> None:
    settings.ANTHROPIC_TIMEOUT = 30.0
    import anthropic  # noqa: F401 - imported here, not inside the timed run (it takes seconds)

    Route.objects.filter(handler="test.http_agent").update(time_limit=2)
    fake_api.text("too late", delay=5)
    source = Source.objects.create(slug="questions", kind="api")
    event = publish(source=source, type="agentrun.question", payload={"q": "?"}).event
    delivery = Delivery.objects.get(event=event, handler="test.http_agent")
    started = time.monotonic()

    execute(delivery.pk)

    delivery.refresh_from_db()
    assert time.monotonic() - started < 4.0  # the limit, not the 5 s answer or 30 s timeout
    assert (delivery.status, delivery.error_class) == (
        DeliveryStatus.RETRYING,
        "handlers.errors.TimeLimitExceeded",
    )
    assert (
        delivery.last_error == "agent 'test.http_agent' reached its time limit during model call 1"
    )


@pytest.mark.django_db
def test_a_plain_handler_past_its_limit_is_reported(
    routes: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="switchyard.pipeline")
    source = Source.objects.create(slug="slow", kind="api")
    event = publish(source=source, type="test.slow", payload={"sleep": 2.3}).event
    delivery = Delivery.objects.get(event=event, handler="test.slow")  # time limit 2 s

    execute(delivery.pk)

    assert re.search(
        rf"delivery {delivery.pk} \(test\.slow\) attempt 1 ran 0\.\d s past its time limit of 2 s",
        caplog.text,
    )
