"""Where a requeue began a fresh set of attempts: each requeue is recorded (who, when, after
which attempt), the first attempt after it carries a mark in the delivery's attempts, and the
delivery's page lists its requeues."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import formats

from events.models import Attempt, AttemptStatus, Delivery, Requeue
from events.transitions import requeue

from .helpers import T0, Jobs, delivery_page, requeue_url

pytestmark = pytest.mark.django_db


def attempt_rows(html: str) -> list[str]:
    """The attempts table's rows, from the first attempt's cell on."""
    table = html[html.index('id="attempt_set-group"') :]
    table = table[: table.index("</table>")]
    return table.split('<tr class="form-row')[1:]


def test_a_requeue_from_the_admin_records_who_and_after_which_attempt(
    admin_client: Client, data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    dead = data["dead_new"]

    admin_client.post(requeue_url(dead.pk))

    mark = Requeue.objects.get()
    assert (mark.delivery_id, mark.after_attempt, mark.requeued_by) == (dead.pk, 3, "admin")


def test_a_second_click_records_no_second_requeue(
    data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    dead = data["dead_new"]

    assert requeue([dead.pk], by="ops") == 1
    assert requeue([dead.pk], by="ops") == 0

    assert list(Requeue.objects.values_list("after_attempt", "requeued_by")) == [(3, "ops")]


def test_the_first_attempt_after_a_requeue_carries_the_mark(
    admin_client: Client, data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    # given three failed attempts, a requeue by ops, and a fourth attempt
    dead = data["dead_new"]
    assert requeue([dead.pk], by="ops") == 1
    Requeue.objects.update(requeued_at=T0 + timedelta(hours=1))
    Attempt.objects.create(delivery=dead, number=4, status=AttemptStatus.SUCCEEDED, started_at=T0)
    Delivery.objects.filter(pk=dead.pk).update(attempts=1, total_attempts=4)

    html = admin_client.get(delivery_page(dead)).content.decode()

    when = formats.localize(T0 + timedelta(hours=1))
    note = f"requeued by ops at {when}"
    rows = attempt_rows(html)
    assert len(rows) == 4
    marked = [n + 1 for n, row in enumerate(rows) if 'class="requeue-mark"' in row]
    assert marked == [4]
    assert f'<p>4<br><span class="requeue-mark">{note}</span></p>' in rows[3]
    # and the delivery's own fields list it
    assert f'<div class="readonly">{note} (after attempt 3)</div>' in html


def test_a_delivery_never_requeued_shows_no_mark(
    admin_client: Client, data: dict[str, Any]
) -> None:
    html = admin_client.get(delivery_page(data["dead_old"])).content.decode()

    assert 'class="requeue-mark"' not in html
    assert len(attempt_rows(html)) == 3
