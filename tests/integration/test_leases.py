"""Heartbeated leases, with real workers: renewed while a handler runs, taken over at once when
the holder is known dead, fenced past the time limit under the threads pool."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest

from events.models import Attempt, Delivery, Event, Source
from events.publish import publish
from events.recovery import sweep
from tests.conftest import Worker, wait_until
from tests.testapp.models import HandlerCall, SideEffect

pytestmark = [pytest.mark.worker, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api_source(db: None) -> Source:
    return Source.objects.create(slug="leases", kind="api")


def _attempts(delivery: Delivery) -> list[tuple[int, str, str]]:
    return list(
        Attempt.objects.filter(delivery=delivery)
        .order_by("number")
        .values_list("number", "status", "error_class")
    )


def test_a_prefork_childs_returned_message_takes_its_delivery_over_at_once(
    worker_factory: Callable[..., Worker], routes: None, api_source: Source
) -> None:
    # given a prefork worker with leases of 120 s (so neither a lapse nor a sweeper, and none
    # runs here, can finish the work in time) whose child has applied its effect
    prefork = worker_factory(
        "prefork",
        queues="chaos",
        pool="prefork",
        concurrency=1,
        env={"SWITCHYARD_LEASE_SECONDS": "120"},
    )
    event = publish(source=api_source, type="test.slow_prefork", payload={"sleep": 120}).event
    key = f"{event.id}:test.slow_prefork"
    wait_until(lambda: SideEffect.objects.filter(key=key).exists(), what="the first effect")
    children = subprocess.run(
        ["pgrep", "-P", str(prefork.pid)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(children) == 1

    # when the pool child is killed
    killed_at = time.monotonic()
    os.kill(int(children[0]), signal.SIGKILL)

    # then the message comes back (acks_late + reject_on_worker_lost), the new child sees the
    # holder has exited and takes the delivery over at once; the effect is not repeated
    wait_until(
        lambda: Delivery.objects.get(event=event).status == "succeeded",
        timeout=20,
        interval=0.2,
        what="the returned message to finish the delivery",
    )
    took = time.monotonic() - killed_at
    prefork.stop()
    log = prefork.log(tail=None)
    assert "WorkerLostError" in log
    assert "was lost (its worker process has exited); taken over" in log
    delivery = Delivery.objects.get(event=event)
    assert [a[:2] for a in _attempts(delivery)] == [(1, "lost"), (2, "succeeded")]
    assert SideEffect.objects.filter(key=key).count() == 1
    assert HandlerCall.objects.filter(handler="test.slow_prefork").count() == 2
    print(f"prefork child killed: delivery finished {took:.1f} s later")


def test_a_running_deliverys_lease_is_renewed_while_its_handler_runs(
    worker_factory: Callable[..., Worker], routes: None, api_source: Source
) -> None:
    # given a worker with leases of 1 s running a handler that takes 6 s
    worker = worker_factory("renews", queues="chaos", env={"SWITCHYARD_LEASE_SECONDS": "1"})
    event = publish(source=api_source, type="test.long", payload={"sleep": 6}).event
    wait_until(
        lambda: Delivery.objects.get(event=event).status == "running", what="the handler to start"
    )

    # when the sweeper looks every half second while it runs
    def done() -> bool:
        sweep()
        return Delivery.objects.get(event=event).status == "succeeded"

    wait_until(done, timeout=30, interval=0.5, what="the handler to finish")
    worker.stop()

    # then the worker kept renewing the lease: nothing was taken back, one attempt ran
    delivery = Delivery.objects.get(event=event)
    assert _attempts(delivery) == [(1, "succeeded", "")]
    assert HandlerCall.objects.filter(handler="test.long").count() == 1


def test_a_threads_attempt_past_its_time_limit_is_fenced_and_its_late_result_dropped(
    worker_factory: Callable[..., Worker], routes: None, api_source: Source
) -> None:
    # given a threads worker and a handler (time limit 2 s) whose first attempt sleeps 16 s
    worker = worker_factory("fences", queues="chaos")
    event = publish(source=api_source, type="test.slow", payload={"sleep": 16}).event

    # when it runs past the limit and the fence margin
    wait_until(
        lambda: Delivery.objects.get(event=event).status == "succeeded",
        timeout=40,
        interval=0.2,
        what="the retry after the fence to finish",
    )
    # (the first attempt returns at 16 s; wait for its result to be dropped)
    wait_until(
        lambda: "finished after its lease was taken over; result dropped" in worker.log(tail=None),
        timeout=20,
        what="the late result to be dropped",
    )
    worker.stop()

    # then attempt 1 was fenced as TimeLimitExceeded, attempt 2 succeeded, the late result of
    # attempt 1 changed nothing, and the effect happened once
    delivery = Delivery.objects.get(event=event)
    assert _attempts(delivery) == [
        (1, "failed", "handlers.errors.TimeLimitExceeded"),
        (2, "succeeded", ""),
    ]
    assert delivery.outcome == {"applied": False, "attempt": 2}
    assert "fenced" in worker.log(tail=None)
    assert SideEffect.objects.filter(key=f"{event.id}:test.slow").count() == 1
    assert Event.objects.get(id=event.id).status == "processed"
