"""Faults against a deployment as it runs (web, two workers, beat with its sweeper, default
settings), on Redis and on RabbitMQ. The test only ingests over HTTP, breaks something, and
checks the ledger: every accepted event final, each (event, handler) effect once. The time to
recover is printed (docs/operations.md, "Recovery times")."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
from django.db import connections

from events.models import Attempt, Event
from tests.chaos.conftest import (
    Deployment,
    assert_exactly_once,
    running_on,
    wait_for_ledger,
)
from tests.conftest import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

HANDLER = "test.long"


def _work(n: int, sleep: float) -> list[tuple[str, dict[str, float]]]:
    return [(HANDLER, {"sleep": sleep})] * n


def test_a_worker_killed_mid_handler_has_its_work_finished_once_within_90_s(
    deployment: Deployment,
) -> None:
    # given web, two workers and beat, and a worker in the middle of handlers
    deployment.start_web()
    doomed = deployment.start_worker("a")
    deployment.start_worker("b")
    deployment.start_beat()
    accepted = deployment.ingest(_work(24, 3), prefix="kill")
    wait_until(lambda: running_on("a") >= 2, timeout=30, what="worker a to run handlers")

    # when that worker is killed with SIGKILL (no ack, no warm shutdown)
    doomed.kill()

    # then everything is finished by the rest of the deployment, each effect once
    result, took = wait_for_ledger(
        accepted, HANDLER, timeout=90, what="every event to be final after the kill"
    )
    assert_exactly_once(result)
    assert Attempt.objects.filter(status="lost").exists()
    print(f"{deployment.broker.kind}: worker killed -9, all final {took:.1f} s later")


def test_a_worker_stopped_by_sigterm_during_a_deploy_finishes_or_returns_its_work(
    deployment: Deployment,
) -> None:
    # given a deployment with a worker in the middle of handlers
    deployment.start_web()
    old = deployment.start_worker("a")
    deployment.start_worker("b")
    deployment.start_beat()
    accepted = deployment.ingest(_work(24, 2), prefix="term")
    wait_until(lambda: running_on("a") >= 2, timeout=30, what="worker a to run handlers")

    # when it gets SIGTERM (a deploy's warm shutdown) and a new one takes its place
    old.stop()
    deployment.start_worker("a2")

    # then its running handlers finished and what it held went back: nothing lost, nothing
    # run twice
    result, took = wait_for_ledger(
        accepted, HANDLER, timeout=90, what="every event to be final after the deploy"
    )
    assert_exactly_once(result)
    assert not Attempt.objects.filter(status="lost").exists()
    assert result.handler_runs == result.accepted
    print(f"{deployment.broker.kind}: warm shutdown, all final {took:.1f} s later")


def test_the_broker_restarted_mid_stream_loses_nothing(deployment: Deployment) -> None:
    # given a backlog queued in the broker behind one small worker
    deployment.start_web()
    deployment.start_worker("a", concurrency=4)
    deployment.start_beat()
    accepted = deployment.ingest(_work(30, 1), prefix="restart")
    wait_until(lambda: running_on("a") >= 1, timeout=30, what="worker a to run handlers")

    # when the broker restarts (Redis without persistence loses what was queued)
    deployment.broker.restart()

    # then every event is still finished, each effect once
    result, took = wait_for_ledger(
        accepted, HANDLER, timeout=150, what="every event to be final after the restart"
    )
    assert_exactly_once(result)
    print(f"{deployment.broker.kind}: broker restarted, all final {took:.1f} s later")


def test_events_accepted_while_the_broker_is_down_are_sent_when_it_is_back(
    deployment: Deployment,
) -> None:
    # given a deployment whose broker is down
    deployment.start_web()
    deployment.start_worker("a")
    deployment.start_beat()
    deployment.broker.stop()
    try:
        # when events arrive: each is answered 202 (committed; the message could not be sent)
        accepted = deployment.ingest(_work(5, 0), prefix="down")
    finally:
        deployment.broker.start()

    # then once the broker is back the sweeper sends them and they finish, each effect once
    result, took = wait_for_ledger(
        accepted, HANDLER, timeout=150, what="every event to be final after the outage"
    )
    assert_exactly_once(result)
    print(f"{deployment.broker.kind}: broker back, all final {took:.1f} s later")


def _restart_postgresql() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        timeout=120,
    )


def test_postgresql_restarted_during_ingest_and_delivery_loses_nothing(
    deployment: Deployment,
) -> None:
    # given a deployment taking a stream of events and running their handlers
    deployment.start_web()
    deployment.start_worker("a")
    deployment.start_beat()
    accepted: list[str] = []
    refused: list[BaseException] = []

    def stream() -> None:
        try:
            for n in range(40):
                # a 503 with Retry-After is sent again (ingest does), anything else fails
                accepted.extend(deployment.ingest([(HANDLER, {"sleep": 0.5})], prefix=f"pg-{n}"))
        except BaseException as exc:
            refused.append(exc)

    sender = threading.Thread(target=stream)
    sender.start()
    wait_until(lambda: len(accepted) >= 10 and running_on("a") >= 1, what="the stream to run")

    # when PostgreSQL restarts in the middle of it (every connection is cut)
    _restart_postgresql()
    sender.join(timeout=120)
    # (this process's pooled connections were cut too: start its pool afresh)
    for conn in connections.all():
        conn.close()
        conn.close_pool()

    # then every request was answered 202 or 503 with Retry-After (and sent again), and every
    # accepted event is finished, each effect once
    assert not refused, refused
    assert len(accepted) == 40
    # (a 503 wrote nothing: had it committed, its retry would have been answered 200 as a
    # duplicate, not 202; and there is one event per id sent)
    assert Event.objects.filter(source__slug="chaos").count() == 40
    result, took = wait_for_ledger(
        accepted, HANDLER, timeout=120, what="every event to be final after the restart"
    )
    assert_exactly_once(result)
    web_log = deployment.web.log() if deployment.web else ""
    print(
        f"{deployment.broker.kind}: PostgreSQL restarted, all final {took:.1f} s later; "
        f"503s answered: {web_log.count('database unavailable')}"
    )
