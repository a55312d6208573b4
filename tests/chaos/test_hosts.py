"""Across hosts: workers and beats on separate networks (tests/hosts.py), one broker and one
PostgreSQL. A host is cut off the network and another killed mid-run; two beats run on two
hosts. On Redis and on RabbitMQ, with the deployment's default lease and sweeper."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from events.models import Event, ScheduleTick, TickStatus
from tests.chaos.conftest import (
    MAINTENANCE_QUEUE,
    Broker,
    Deployment,
    assert_exactly_once,
    running_on,
    wait_for_ledger,
)
from tests.conftest import Beat, RedisServer, Worker, wait_until
from tests.hosts import Forwarder, Host
from tests.schedules.conftest import FAST_BEAT, make_schedule

pytestmark = [pytest.mark.worker, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

HANDLER = "test.long"


@pytest.fixture
def hosts(tmp_path: Path, broker: Broker, redis_server: RedisServer) -> Iterator[list[Host]]:
    made = [Host(i).create() for i in (1, 2, 3)]
    forwarder = Forwarder(made, [5432, redis_server.port, 5672], tmp_path / "forwarder.log")
    forwarder.start()
    yield made
    forwarder.stop()
    for host in made:
        host.remove()


def _env(deployment: Deployment, host: Host) -> dict[str, str]:
    return {
        **deployment.env,
        "SWITCHYARD_TEST_REDIS_HOST": host.gateway,
        "SWITCHYARD_TEST_BROKER_URL": host.url(deployment.broker.url),
    }


def worker_on(deployment: Deployment, host: Host, name: str, queues: str = "chaos") -> Worker:
    w = Worker(
        name=name,
        queues=f"{queues},{MAINTENANCE_QUEUE}",
        concurrency=8,
        database_url=host.url(deployment.database_url),
        logdir=deployment.logdir,
        env=_env(deployment, host),
        prefix=host.prefix,
    )
    deployment.processes.append(w)
    w.start()
    return w


def beat_on(deployment: Deployment, host: Host, name: str) -> Beat:
    b = Beat(
        name=name,
        database_url=host.url(deployment.database_url),
        logdir=deployment.logdir,
        env={**_env(deployment, host), **FAST_BEAT},
        prefix=host.prefix,
    )
    deployment.processes.append(b)
    b.start()
    return b


def test_a_host_cut_off_and_another_killed_mid_run_lose_nothing(
    deployment: Deployment, hosts: list[Host]
) -> None:
    # given three worker hosts running handlers, web and beat on this machine
    h1, h2, h3 = hosts
    deployment.start_web()
    deployment.start_beat()
    cut_off = worker_on(deployment, h1, "h1")
    killed = worker_on(deployment, h2, "h2")
    worker_on(deployment, h3, "h3")
    accepted = deployment.ingest([(HANDLER, {"sleep": 3})] * 30, prefix="hosts")
    wait_until(
        lambda: running_on("h1") >= 2 and running_on("h2") >= 2,
        timeout=30,
        what="hosts 1 and 2 to run handlers",
    )

    # when host 1 falls off the network and host 2's worker is killed
    h1.cut()
    killed.kill()

    # then the third host finishes everything, each effect once
    try:
        result, took = wait_for_ledger(
            accepted, HANDLER, timeout=150, what="every event to be final after the faults"
        )
    finally:
        h1.heal()
        cut_off.kill()
    assert_exactly_once(result)
    print(f"{deployment.broker.kind}: host cut off + host killed, all final {took:.1f} s later")


def test_two_beats_on_two_hosts_send_one_tick_per_due_time(
    deployment: Deployment, hosts: list[Host]
) -> None:
    # given a schedule every second, a worker, and a beat on each of two hosts
    h1, h2, h3 = hosts
    make_schedule("two-hosts", every=1)
    worker_on(deployment, h3, "h3", queues="default")
    beats = {h1: beat_on(deployment, h1, "b1"), h2: beat_on(deployment, h2, "b2")}
    both = datetime.now(UTC)

    def published_since(moment: datetime) -> int:
        return ScheduleTick.objects.filter(
            name="two-hosts", status=TickStatus.PUBLISHED, due_at__gt=moment
        ).count()

    wait_until(lambda: published_since(both) >= 5, timeout=30, what="five ticks")

    # when the host whose beat sends is cut off
    sending = [h for h, b in beats.items() if "Sending due task two-hosts" in b.log(tail=None)]
    assert len(sending) == 1, "exactly one beat sends while both run"
    sending[0].cut()
    cut_at = datetime.now(UTC)
    started = time.monotonic()
    try:
        # then the other takes over and the schedule goes on
        wait_until(lambda: published_since(cut_at) >= 3, timeout=60, what="the other beat")
        took = time.monotonic() - started
    finally:
        sending[0].heal()
        beats[sending[0]].kill()

    # and no due time was ever run twice: one published tick and one event per due time
    published = list(
        ScheduleTick.objects.filter(name="two-hosts", status=TickStatus.PUBLISHED).values_list(
            "due_at", flat=True
        )
    )
    twice = [due for due, n in Counter(published).items() if n > 1]
    assert twice == []
    assert Event.objects.filter(type="schedule.two-hosts").count() == len(published)
    print(f"{deployment.broker.kind}: beat host cut off, the other beat sent {took:.1f} s later")
