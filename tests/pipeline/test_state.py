"""Memory across events (``ctx.state``): read by a run, written with its success in the same
transaction only if nobody wrote it since (else the handler runs again on the fresh state),
limited in size. The handlers are in tests/testapp/state_handlers.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db.models import F

from events.delivery import execute
from events.models import Attempt, Delivery, Event, HandlerState, Source
from events.publish import publish
from events.state import MAX_RUNS
from tests.testapp import state_handlers
from tests.testapp.models import HandlerCall

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(db: None, routes: None) -> Source:
    return Source.objects.create(slug="memory", kind="api")


@pytest.fixture(autouse=True)
def _no_interleaving() -> Iterator[None]:
    yield
    state_handlers.BETWEEN_READ_AND_WRITE.clear()


def deliver(source: Source, type: str, key: str | None = "guest-1", **payload: Any) -> Delivery:
    event = publish(source=source, type=type, payload=payload, partition_key=key).event
    delivery = Delivery.objects.get(event=event)
    execute(delivery.id)
    delivery.refresh_from_db()
    return delivery


def stored(handler: str, key: str) -> tuple[dict[str, Any], int]:
    row = HandlerState.objects.get(handler=handler, partition_key=key)
    return row.data, row.version


def someone_writes(key: str, data: dict[str, Any]) -> None:
    """Another delivery's (or an operator's) write of the counter's state, committed."""
    updated = HandlerState.objects.filter(handler="test.state.count", partition_key=key).update(
        data=data, version=F("version") + 1
    )
    if not updated:
        HandlerState.objects.create(handler="test.state.count", partition_key=key, data=data)


def test_a_run_sees_the_state_the_previous_event_of_its_key_left(source: Source) -> None:
    first = deliver(source, "test.state.count")
    second = deliver(source, "test.state.count")

    assert (first.status, first.outcome) == ("succeeded", {"count": 1})
    assert (second.status, second.outcome) == ("succeeded", {"count": 2})
    row = HandlerState.objects.get(handler="test.state.count", partition_key="guest-1")
    assert (row.data, row.version, row.updated_by_delivery_id) == ({"count": 2}, 2, second.id)


def test_each_partition_key_and_no_key_have_their_own_state(source: Source) -> None:
    deliver(source, "test.state.count", key="guest-1")
    deliver(source, "test.state.count", key="guest-1")
    deliver(source, "test.state.count", key="guest-2")
    deliver(source, "test.state.count", key=None)

    assert stored("test.state.count", "guest-1") == ({"count": 2}, 2)
    assert stored("test.state.count", "guest-2") == ({"count": 1}, 1)
    assert stored("test.state.count", "") == ({"count": 1}, 1)


def test_a_handler_that_only_reads_its_state_writes_nothing(source: Source) -> None:
    deliver(source, "test.state.put", value="kept")

    delivery = deliver(source, "test.state.read")

    assert (delivery.status, delivery.outcome) == ("succeeded", {"state": {}})
    assert not HandlerState.objects.filter(handler="test.state.read").exists()
    assert stored("test.state.put", "guest-1") == ({"value": "kept"}, 1)
    deliver(source, "test.state.put", value="kept")
    assert stored("test.state.put", "guest-1") == ({"value": "kept"}, 1)


def test_a_failed_run_leaves_its_state_unwritten(source: Source) -> None:
    deliver(source, "test.state.put", value="before")

    delivery = deliver(source, "test.state.put", value="after", fail=True)

    assert delivery.status == "retrying"
    assert stored("test.state.put", "guest-1") == ({"value": "before"}, 1)


def test_a_write_between_read_and_success_makes_the_handler_run_again_on_it(
    source: Source,
) -> None:
    # given the counter at 1, and another writer that sets it to 10 while the next run works
    deliver(source, "test.state.count")
    state_handlers.BETWEEN_READ_AND_WRITE.append(lambda: someone_writes("guest-1", {"count": 10}))

    # when
    delivery = deliver(source, "test.state.count")

    # then the first run's result was not recorded: the handler ran again, in the same attempt,
    # on the other writer's state, and its follow-up event is published once
    assert (delivery.status, delivery.outcome, delivery.total_attempts) == (
        "succeeded",
        {"count": 11},
        1,
    )
    assert stored("test.state.count", "guest-1") == ({"count": 11}, 3)
    runs = HandlerCall.objects.filter(event_id=str(delivery.event_id))
    assert list(runs.values_list("attempt", flat=True)) == [1, 1]
    assert [e.payload for e in Event.objects.filter(emitted_by=delivery)] == [{"count": 11}]
    assert list(Attempt.objects.filter(delivery=delivery).values_list("status", flat=True)) == [
        "succeeded"
    ]


def test_a_first_write_loses_to_another_first_write_and_runs_again(source: Source) -> None:
    state_handlers.BETWEEN_READ_AND_WRITE.append(lambda: someone_writes("guest-1", {"count": 5}))

    delivery = deliver(source, "test.state.count")

    assert (delivery.status, delivery.outcome) == ("succeeded", {"count": 6})
    assert stored("test.state.count", "guest-1") == ({"count": 6}, 2)


def test_a_state_that_keeps_changing_fails_the_attempt_as_transient_after_max_runs(
    source: Source,
) -> None:
    # given another writer that comes first on every run
    for n in range(MAX_RUNS):
        state_handlers.BETWEEN_READ_AND_WRITE.append(
            lambda n=n: someone_writes("guest-1", {"count": 100 + n})
        )

    delivery = deliver(source, "test.state.count")

    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    assert delivery.error_class == "handlers.errors.TransientError"
    assert delivery.last_error == (
        f"state for test.state.count/guest-1 changed since version {MAX_RUNS - 1} was read: "
        f"another write came first on each of {MAX_RUNS} runs of the handler in this attempt; "
        "it is retried after its backoff"
    )
    assert stored("test.state.count", "guest-1") == ({"count": 104}, MAX_RUNS)
    assert HandlerCall.objects.filter(event_id=str(delivery.event_id)).count() == MAX_RUNS
    assert not Event.objects.filter(emitted_by=delivery).exists()


def test_state_over_the_size_limit_dead_letters_and_writes_nothing(
    source: Source, settings: Any
) -> None:
    settings.SWITCHYARD_STATE_MAX_BYTES = 100
    deliver(source, "test.state.put", value="small")

    delivery = deliver(source, "test.state.put", value="x" * 100)

    assert delivery.status == "dead_lettered"
    assert delivery.error_class == "handlers.errors.PermanentError"
    assert delivery.last_error == (
        "state for test.state.put/guest-1 is 112 bytes, over the limit of 100"
    )
    assert stored("test.state.put", "guest-1") == ({"value": "small"}, 1)


def test_state_that_is_not_json_dead_letters_with_the_reason(source: Source) -> None:
    delivery = deliver(source, "test.state.put", value=["a", "b"], as_set=True)

    assert delivery.status == "dead_lettered"
    assert delivery.last_error == (
        "state for test.state.put/guest-1 cannot be stored: it holds a set, which is not JSON"
    )
    assert not HandlerState.objects.exists()


def test_known_secrets_are_replaced_in_stored_state(source: Source, settings: Any) -> None:
    settings.SECRET_KEY = "s3cr3t-value-for-state-tests"

    deliver(source, "test.state.put", value="token s3cr3t-value-for-state-tests")

    assert stored("test.state.put", "guest-1") == ({"value": "token [redacted]"}, 1)
