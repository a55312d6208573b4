"""Consumers stopping, dying and sharing a group: nothing is lost, nothing is stored twice.

Each test holds publishes back with a table lock so that a consumer is caught, deterministically,
with entries read but not yet stored (pending in the group)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest
import redis

from events.models import Source
from tests.conftest import wait_until

from .conftest import Consumer, add, events, pending_by_consumer, publishes_held, wait_consumed

pytestmark = pytest.mark.django_db(transaction=True)


def _add(r: redis.Redis, stream: str, ids: list[str]) -> list[str]:
    return [
        add(r, stream, {"type": "shop.order.created", "id": external_id, "payload": "{}"})
        for external_id in ids
    ]


def test_sigterm_finishes_the_current_entry_and_loses_nothing(
    consumers: Callable[..., Consumer], r: redis.Redis, stream: str, stream_source: Source
) -> None:
    # given: a consumer that has read five entries and is storing the first
    r.xgroup_create(stream, "g", id="0", mkstream=True)
    entry_ids = _add(r, stream, [f"o-{n}" for n in range(5)])
    with publishes_held():
        consumer = consumers("--batch", "5", "--consumer", "first")
        wait_until(lambda: pending_by_consumer(r, stream) == {"first": 5}, what="5 entries read")

        # when
        consumer.process.send_signal(signal.SIGTERM)
    # (the lock is released: the first publish completes)

    # then: it stores and acknowledges that entry, and exits 0
    assert consumer.wait() == 0
    assert consumer.summary() == {
        "published": 1, "duplicates": 0, "dead_lettered": 0, "failed": 0, "claimed": 0
    }  # fmt: skip
    assert events(stream_source).keys() == {"o-0"}
    # the other four are still owed: pending in the group, for XAUTOCLAIM by the next consumer
    still_pending: Any = r.xpending_range(stream, "g", "-", "+", 10)
    assert [(p["message_id"], p["consumer"]) for p in still_pending] == [
        (entry_id, "first") for entry_id in entry_ids[1:]
    ]


def test_a_killed_consumers_pending_entries_are_claimed_by_another(
    consumers: Callable[..., Consumer], r: redis.Redis, stream: str, stream_source: Source
) -> None:
    # given: a consumer killed with five entries read and none stored
    ids = [f"o-{n}" for n in range(5)]
    r.xgroup_create(stream, "g", id="0", mkstream=True)
    last_id = _add(r, stream, ids)[-1]
    with publishes_held():
        doomed = consumers("--batch", "5", "--consumer", "doomed")
        wait_until(lambda: pending_by_consumer(r, stream) == {"doomed": 5}, what="5 entries read")
        doomed.kill()

    # when
    heir = consumers("--claim-idle", "200", "--consumer", "heir")

    # then: XAUTOCLAIM hands them over and each is stored once
    wait_consumed(r, stream, last_id)
    assert events(stream_source).keys() == set(ids)
    assert heir.terminate() == 0
    assert heir.summary() == {
        "published": 5, "duplicates": 0, "dead_lettered": 0, "failed": 0, "claimed": 5
    }  # fmt: skip


def test_two_consumers_share_the_load_without_duplicates(
    consumers: Callable[..., Consumer], r: redis.Redis, stream: str, stream_source: Source
) -> None:
    # given
    one = consumers("--batch", "2", "--consumer", "one", ready=False)
    two = consumers("--batch", "2", "--consumer", "two", ready=False)
    one.wait_ready(), two.wait_ready()
    ids = [f"o-{n}" for n in range(30)]

    # when: both have entries in hand before either can store one
    with publishes_held():
        last_id = _add(r, stream, ids)[-1]
        wait_until(
            lambda: pending_by_consumer(r, stream).keys() == {"one", "two"},
            what="both consumers to hold entries",
        )

    # then
    wait_consumed(r, stream, last_id)
    assert events(stream_source).keys() == set(ids)
    assert (one.terminate(), two.terminate()) == (0, 0)
    a, b = one.summary(), two.summary()
    assert a["published"] > 0
    assert b["published"] > 0
    assert a["published"] + b["published"] == 30
    assert a["duplicates"] + b["duplicates"] == 0
