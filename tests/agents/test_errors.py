"""API failures become TransientError or PermanentError, with bounded HTTP calls."""

from __future__ import annotations

import time
from typing import Any

import pytest

from handlers.errors import PermanentError, TransientError
from handlers.llm import Agent

from .conftest import FakeMessagesAPI

agent = Agent(name="plain", system="Be brief.", model="claude-sonnet-5-5", max_turns=3)


def test_429_with_a_long_retry_after_is_handed_to_celery(
    fake_api: FakeMessagesAPI, make_ctx: Any
) -> None:
    fake_api.error(429, "rate_limit_error", headers={"retry-after": "7"})

    with pytest.raises(TransientError) as caught:
        agent.run(make_ctx(), "Summarise.")

    assert caught.value.retry_after == 7
    assert "429" in str(caught.value)
    # No seven-second sleep in the worker: one request, then the delivery is retried later.
    assert len(fake_api.requests) == 1


def test_429_with_a_short_retry_after_is_retried_once_in_process(
    fake_api: FakeMessagesAPI, make_ctx: Any
) -> None:
    fake_api.error(429, "rate_limit_error", headers={"retry-after": "0.1"})
    fake_api.text("ok")

    assert agent.run(make_ctx(), "Summarise.").text == "ok"
    assert len(fake_api.requests) == 2


@pytest.mark.parametrize(
    ("status", "kind"), [(529, "overloaded_error"), (500, "api_error"), (503, "api_error")]
)
def test_server_errors_are_transient_after_one_sdk_retry(
    fake_api: FakeMessagesAPI, make_ctx: Any, status: int, kind: str
) -> None:
    fake_api.error(status, kind)
    fake_api.error(status, kind)

    with pytest.raises(TransientError) as caught:
        agent.run(make_ctx(), "Summarise.")

    assert str(caught.value) == f"Anthropic API answered {status}: {kind}: scripted"
    assert caught.value.retry_after is None
    assert len(fake_api.requests) == 2  # 1 + SWITCHYARD_AGENT_MAX_RETRIES


def test_server_error_then_success_within_the_sdk_retry(
    fake_api: FakeMessagesAPI, make_ctx: Any
) -> None:
    fake_api.error(529, "overloaded_error")
    fake_api.text("ok")

    assert agent.run(make_ctx(), "Summarise.").text == "ok"
    assert len(fake_api.requests) == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
    ],
)
def test_client_errors_are_permanent_and_not_retried(
    fake_api: FakeMessagesAPI, make_ctx: Any, status: int, kind: str
) -> None:
    fake_api.error(status, kind)
    steps: list[dict[str, Any]] = []

    with pytest.raises(PermanentError) as caught:
        agent.run(make_ctx(steps=steps), "Summarise.")

    assert str(caught.value) == f"Anthropic API answered {status}: {kind}: scripted"
    assert len(fake_api.requests) == 1
    assert [s["kind"] for s in steps] == ["llm"]
    assert steps[0]["error"].startswith(f"{type(caught.value.__cause__).__name__}: ")


def test_slow_answer_past_the_timeout_is_transient(
    fake_api: FakeMessagesAPI, make_ctx: Any, settings: Any
) -> None:
    settings.ANTHROPIC_TIMEOUT = 0.3
    fake_api.text("too late", delay=1.5)
    fake_api.text("too late", delay=1.5)

    with pytest.raises(TransientError, match=r"timed out after 0\.3 s"):
        agent.run(make_ctx(), "Summarise.")
    assert len(fake_api.requests) == 2


def test_http_requests_per_run_are_bounded(
    fake_api: FakeMessagesAPI, make_ctx: Any, settings: Any
) -> None:
    """max_turns * (1 + max_retries): every turn's call needs one SDK retry, then the loop
    runs out of turns."""
    settings.SWITCHYARD_AGENT_MAX_RETRIES = 1
    tool_agent = Agent(name="t", system="s", model="claude-sonnet-5-5", max_turns=3, tools=[])
    for n in range(3):
        fake_api.error(500, "api_error")
        fake_api.reply(
            [{"type": "tool_use", "id": f"toolu_{n}", "name": "nothing", "input": {}}],
            stop_reason="tool_use",
        )
    fake_api.text("never reached")

    with pytest.raises(PermanentError, match="3 turns"):
        tool_agent.run(make_ctx(), "Go.")
    assert len(fake_api.requests) == 3 * (1 + 1)


def test_unreachable_api_is_transient(make_ctx: Any, monkeypatch: Any, settings: Any) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    settings.SWITCHYARD_AGENT_PROVIDER = "anthropic"
    settings.SWITCHYARD_AGENT_MAX_RETRIES = 0

    with pytest.raises(TransientError, match="could not reach the Anthropic API"):
        agent.run(make_ctx(), "Summarise.")


# In the pipeline every run has a deadline, its route's time limit. Under the defaults (a 60 s
# limit, a 60 s ANTHROPIC_TIMEOUT) the time left is always shorter than the timeout, so each
# request is bounded by it and made by a client without the SDK's retries: the agent retries
# it itself, while the pause and a try still fit in the time left.


@pytest.fixture
def default_timeout(settings: Any) -> None:
    settings.ANTHROPIC_TIMEOUT = 60.0  # the default (the agents' tests use 5 s)


def _with_the_default_deadline(make_ctx: Any) -> Any:
    ctx = make_ctx()
    ctx.deadline = time.monotonic() + 60
    return ctx


def test_a_time_bounded_request_is_retried_after_a_server_error(
    fake_api: FakeMessagesAPI, make_ctx: Any, default_timeout: None
) -> None:
    fake_api.error(529, "overloaded_error")
    fake_api.text("ok")

    assert agent.run(_with_the_default_deadline(make_ctx), "Summarise.").text == "ok"
    assert len(fake_api.requests) == 2


def test_a_time_bounded_request_is_tried_at_most_once_more_by_default(
    fake_api: FakeMessagesAPI, make_ctx: Any, default_timeout: None
) -> None:
    fake_api.error(503, "api_error")
    fake_api.error(503, "api_error")

    with pytest.raises(TransientError, match="503"):
        agent.run(_with_the_default_deadline(make_ctx), "Summarise.")
    assert len(fake_api.requests) == 2  # 1 + SWITCHYARD_AGENT_MAX_RETRIES


def test_a_time_bounded_request_is_not_retried_after_a_client_error(
    fake_api: FakeMessagesAPI, make_ctx: Any, default_timeout: None
) -> None:
    fake_api.error(400, "invalid_request_error")

    with pytest.raises(PermanentError):
        agent.run(_with_the_default_deadline(make_ctx), "Summarise.")
    assert len(fake_api.requests) == 1


def test_a_time_bounded_request_hands_a_long_retry_after_to_celery(
    fake_api: FakeMessagesAPI, make_ctx: Any, default_timeout: None
) -> None:
    fake_api.error(429, "rate_limit_error", headers={"retry-after": "7"})

    with pytest.raises(TransientError) as caught:
        agent.run(_with_the_default_deadline(make_ctx), "Summarise.")
    assert caught.value.retry_after == 7
    assert len(fake_api.requests) == 1


def test_a_time_bounded_request_is_not_retried_when_the_pause_does_not_fit(
    fake_api: FakeMessagesAPI, make_ctx: Any, default_timeout: None
) -> None:
    fake_api.error(429, "rate_limit_error", headers={"retry-after": "2"})
    fake_api.text("too late")
    ctx = make_ctx()
    ctx.deadline = time.monotonic() + 2.5  # the 2 s pause would leave less than a second

    with pytest.raises(TransientError, match="429"):
        agent.run(ctx, "Summarise.")
    assert len(fake_api.requests) == 1
