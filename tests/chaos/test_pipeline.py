"""The pipeline end to end on each broker: fan-out, retries with backoff (countdown messages),
dead letters, through the deployment's web, worker and beat."""

from __future__ import annotations

import pytest

from events.models import Attempt, Delivery, Event
from tests.chaos.conftest import Deployment
from tests.conftest import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


def test_fan_out_retries_and_dead_letters_work_on_each_broker(deployment: Deployment) -> None:
    # given a deployment on this broker
    deployment.start_web()
    deployment.start_worker("a", queues="default")
    deployment.start_beat()

    # when an event two handlers want, one a handler refuses, and one that fails twice arrive
    fanned, refused, flaky = deployment.ingest(
        [
            ("scenario.reservation.cancelled", {"guest": "ada", "reservation": "r1"}),
            ("scenario.reservation.cancelled", {"fail": "permanent"}),
            ("test.flaky", {}),
        ],
        prefix="pipeline",
    )

    # then each ends as the pipeline says
    def statuses() -> list[str]:
        return [Event.objects.get(id=e).status for e in (fanned, refused, flaky)]

    wait_until(
        lambda: statuses() == ["processed", "dead_lettered", "processed"],
        timeout=60,
        interval=0.3,
        what="the three events to be final",
    )
    assert sorted(Delivery.objects.filter(event_id=fanned).values_list("handler", "status")) == [
        ("test.notify", "succeeded"),
        ("test.rebook", "succeeded"),
    ]
    assert list(
        Attempt.objects.filter(delivery__event_id=flaky)
        .order_by("number")
        .values_list("status", flat=True)
    ) == ["failed", "failed", "succeeded"]
    dead = Delivery.objects.get(event_id=refused, handler="test.notify")
    assert (dead.status, dead.total_attempts) == ("dead_lettered", 1)
