"""Deliveries write no Celery task result: the Delivery and Attempt rows are the record
(docs/architecture.md, "Task results"). A result row per delivery would say SUCCESS for a
delivery that was dead-lettered, since the task itself returns normally."""

from __future__ import annotations

from typing import Any

import pytest
from django_celery_results.models import TaskResult

from events.models import Delivery, Source
from events.publish import publish
from tests.conftest import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_deliveries_leave_no_task_result_whatever_became_of_them(worker: Any, routes: None) -> None:
    # given one delivery that succeeds and one that is dead-lettered after its two attempts
    source = Source.objects.create(slug="results", kind="api")
    ok = publish(source=source, type="test.emitted", payload={"parent": "p"}).event
    doomed = publish(source=source, type="test.unexpected", payload={}).event

    # when a real worker has run them to their final states
    final = wait_until(
        lambda: (
            list(
                Delivery.objects.filter(event__in=[ok, doomed])
                .exclude(status__in=["pending", "running", "retrying"])
                .order_by("handler")
                .values_list("handler", "status")
            )
            if Delivery.objects.filter(
                event__in=[ok, doomed], status__in=["succeeded", "dead_lettered"]
            ).count()
            == 2
            else None
        ),
        timeout=40,
        what="both deliveries to end",
    )
    assert final == [("test.child", "succeeded"), ("test.unexpected", "dead_lettered")]

    # then Celery stored no result for any of the three task runs
    assert list(TaskResult.objects.values_list("task_name", "status")) == []


def _ended(event_ids: list[Any]) -> list[tuple[str, str]]:
    return list(
        Delivery.objects.filter(event__in=event_ids, status__in=["succeeded", "dead_lettered"])
        .order_by("handler")
        .values_list("handler", "status")
    )
