"""Agent runs in a real Celery worker process, talking to the fake Messages API over HTTP.

The fake API is a real HTTP server in this process; each worker gets its URL through
``ANTHROPIC_BASE_URL`` and runs the real ``anthropic`` SDK against it. The handlers are in
tests/testapp/agent_handlers.py, on a queue only these workers consume. The SDK's own retries
are off in the workers (``SWITCHYARD_AGENT_MAX_RETRIES=0``), so every API failure reaches the
pipeline and what the delivery does about it is visible in its Attempt rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from events.models import Attempt, Delivery, Event, Source
from events.publish import publish
from events.recovery import sweep
from handlers.models import Step, ToolEffect
from tests.conftest import RedisServer, Worker, wait_until
from tests.testapp.agent_handlers import HTTP_AGENT_QUEUE, REFUND_LEDGER, issue_refund
from tests.testapp.models import SideEffect

from .conftest import FakeMessagesAPI

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

USAGE = {"input_tokens": 10, "output_tokens": 5}
NO_CACHE = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    server = FakeMessagesAPI()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def start_worker(
    worker_factory: Callable[..., Worker],
    api: FakeMessagesAPI,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], Worker]]:
    """Start workers on the agents' own queue, pointed at this test's fake API."""
    # A worker inherits this process's environment; a real token there would win over the key.
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    env = {
        "ANTHROPIC_BASE_URL": api.url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "SWITCHYARD_AGENT_PROVIDER": "anthropic",
        "ANTHROPIC_TIMEOUT": "10",
        "SWITCHYARD_AGENT_MAX_RETRIES": "0",
        # Short leases: a killed worker's delivery is free for the sweeper within seconds.
        "SWITCHYARD_LEASE_SECONDS": "2",
    }
    started: list[Worker] = []

    def start(name: str) -> Worker:
        w = worker_factory(name, queues=HTTP_AGENT_QUEUE, env=env)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()  # a no-op for a worker the test killed
    # Not one of the queues the shared teardown empties: nothing may be left for the next test.
    redis_server.client().delete(HTTP_AGENT_QUEUE)


@pytest.fixture
def source(db: None) -> Source:
    return Source.objects.create(slug="agents-http", kind="api")


def finished(delivery: Delivery) -> bool:
    return Delivery.objects.get(id=delivery.id).status in ("succeeded", "dead_lettered")


def steps(delivery: Delivery) -> list[tuple[Any, ...]]:
    return list(
        Step.objects.filter(attempt__delivery=delivery)
        .order_by("attempt__number", "number")
        .values_list("attempt__number", "kind", "name", "output", "error", "stop_reason")
    )


def test_429_with_retry_after_retries_the_delivery_after_the_wait_and_succeeds(
    api: FakeMessagesAPI, start_worker: Callable[[str], Worker], routes: None, source: Source
) -> None:
    # given an API that is rate limited once, asking for a one-second wait
    api.error(429, "rate_limit_error", "slow down", headers={"retry-after": "1"})
    api.text("ord_7 has shipped.", usage=USAGE)
    worker = start_worker("agents-429")

    # when the question reaches the worker
    event = publish(source=source, type="agentrun.question", payload={"order": "ord_7"}).event
    delivery = Delivery.objects.get(event=event)
    wait_until(lambda: finished(delivery), what="the delivery to finish")
    worker.stop()

    # then the first attempt failed with the transient error and the second succeeded
    delivery.refresh_from_db()
    assert (delivery.status, delivery.total_attempts) == ("succeeded", 2)
    assert delivery.outcome == {
        "provider": "anthropic",
        "model": "claude-sonnet-5-5",
        "text": "ord_7 has shipped.",
        "stop_reason": "end_turn",
        "turns": 1,
        "usage": {**USAGE, **NO_CACHE},
    }
    first, second = Attempt.objects.filter(delivery=delivery).order_by("number")
    assert (first.number, first.status, first.error_class, first.error_message) == (
        1,
        "failed",
        "handlers.errors.TransientError",
        "Anthropic API answered 429: rate_limit_error: slow down",
    )
    assert (second.number, second.status) == (2, "succeeded")
    # the retry waited for the API's retry-after, not the route's 0.01 s backoff
    assert first.retry_delay == 1.0
    assert first.finished_at is not None
    assert second.started_at - first.finished_at >= timedelta(seconds=1)
    assert len(api.requests) == 2
    assert steps(delivery) == [
        (1, "llm", "claude-sonnet-5-5", None, "RateLimitError: " + first.error_message, ""),
        (2, "llm", "claude-sonnet-5-5", None, "", "end_turn"),
    ]


def test_400_invalid_request_dead_letters_at_once_with_the_reason(
    api: FakeMessagesAPI, start_worker: Callable[[str], Worker], routes: None, source: Source
) -> None:
    # given an API that refuses the request as invalid
    api.error(400, "invalid_request_error", "max_tokens: must be at most 64000")
    worker = start_worker("agents-400")

    # when the question reaches the worker
    event = publish(source=source, type="agentrun.question", payload={"order": "ord_7"}).event
    delivery = Delivery.objects.get(event=event)
    wait_until(lambda: finished(delivery), what="the delivery to finish")
    worker.stop()

    # then it is dead-lettered after one attempt (of three allowed), with the API's reason
    delivery.refresh_from_db()
    reason = "Anthropic API answered 400: invalid_request_error: max_tokens: must be at most 64000"
    assert (delivery.status, delivery.total_attempts) == ("dead_lettered", 1)
    assert (delivery.error_class, delivery.last_error) == ("handlers.errors.PermanentError", reason)
    attempts = list(
        Attempt.objects.filter(delivery=delivery).values_list(
            "number", "status", "error_message", "retry_delay"
        )
    )
    assert attempts == [(1, "failed", reason, None)]
    assert Event.objects.get(id=event.id).status == "dead_lettered"
    assert len(api.requests) == 1


def test_a_run_killed_after_a_write_tool_acted_does_not_act_again_when_run_again(
    api: FakeMessagesAPI, start_worker: Callable[[str], Worker], routes: None, source: Source
) -> None:
    # given a model that asks for a refund, then takes its time over the next answer
    refund_input = {"order_id": "ord_7", "amount_cents": 1500}
    api.tool_use("issue_refund", refund_input, id="toolu_1", usage=USAGE)
    api.text("never delivered", delay=60)
    # and, for the re-run, the same tool call again and then a final answer
    api.tool_use("issue_refund", refund_input, id="toolu_1", usage=USAGE)
    api.text("Refunded $15.00.", usage=USAGE)
    first_worker = start_worker("agents-kill-1")
    event = publish(
        source=source, type="agentrun.refund_requested", payload={"order": "ord_7"}
    ).event
    delivery = Delivery.objects.get(event=event)
    wait_until(lambda: len(api.requests) == 2, what="the model call after the refund")
    assert SideEffect.objects.filter(handler=REFUND_LEDGER).count() == 1

    # when the worker is killed while it waits for the model (no ack, no result recorded)
    first_worker.kill()
    assert Delivery.objects.get(id=delivery.id).status == "running"

    # and a new worker starts; the sweeper takes the delivery back once its lease has lapsed
    second_worker = start_worker("agents-kill-2")
    wait_until(lambda: sweep(grace=0.5).recovered == 1, interval=0.5, what="the sweeper")
    wait_until(lambda: finished(delivery), what="the re-run to finish")
    second_worker.stop()

    # then the delivery succeeded on its second attempt
    delivery.refresh_from_db()
    assert (delivery.status, delivery.total_attempts) == ("succeeded", 2)
    assert delivery.outcome is not None
    assert (delivery.outcome["text"], delivery.outcome["turns"]) == ("Refunded $15.00.", 2)
    attempts = list(Attempt.objects.filter(delivery=delivery).values_list("number", "status"))
    assert sorted(attempts) == [(1, "lost"), (2, "succeeded")]

    # and the refund was made exactly once, under the tool call's idempotency key
    refund = SideEffect.objects.get(handler=REFUND_LEDGER)
    key = issue_refund.idempotency_key(f"{event.id}:test.refund_agent", refund_input)
    result = {"refund_id": refund.key, **refund_input}
    assert list(ToolEffect.objects.values_list("key", "result")) == [(key, result)]

    # and the second call returned the stored result, to the trace and to the model (as equal
    # JSON: PostgreSQL's jsonb hands the stored dict back with its keys in its own order)
    stored = [
        (number, kind, name, output if kind == "llm" else json.loads(output), error, stop)
        for number, kind, name, output, error, stop in steps(delivery)
    ]
    assert stored == [
        (1, "llm", "claude-sonnet-5-5", None, "", "tool_use"),
        (1, "tool", "issue_refund", result, "", ""),
        (2, "llm", "claude-sonnet-5-5", None, "", "tool_use"),
        (2, "tool", "issue_refund", result, "", ""),
        (2, "llm", "claude-sonnet-5-5", None, "", "end_turn"),
    ]
    assert len(api.requests) == 4
    [tool_result] = api.requests[3].body["messages"][-1]["content"]
    assert json.loads(tool_result.pop("content")) == result
    assert tool_result == {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": False}
