"""A schedule edited in the browser reaches a real, running beat: the operator switches a
once-a-year schedule to every second in its change form, and beat sends a tick each second
from then on, which a worker on a queue of its own records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule

from events.models import TickStatus
from tests.conftest import Beat, Worker, wait_until
from tests.schedules.conftest import FAST_BEAT, count, make_schedule, ticks

from .conftest import log_in

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

QUEUE = "browser-schedule-edit"


@pytest.fixture
def tick_worker(worker_factory: Callable[..., Worker], request: pytest.FixtureRequest) -> Worker:
    """A worker for the schedule's ticks only, stopped when the test ends."""
    worker = worker_factory("schedule-edit", queues=QUEUE)
    request.addfinalizer(worker.stop)
    return worker


def test_a_schedule_edited_in_the_browser_ticks_in_a_running_beat(
    browser: Any,
    live_server: Any,
    superuser: User,
    tick_worker: Worker,
    beat_factory: Callable[..., Beat],
) -> None:
    # given a schedule that runs on 1 January only, its ticks on the worker's queue, and beat
    yearly = CrontabSchedule.objects.create(
        minute="0", hour="0", day_of_month="1", month_of_year="1"
    )
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    task = make_schedule("edited-in-browser", crontab=yearly, queue=QUEUE)
    beat = beat_factory("schedule-edit", env=FAST_BEAT)
    session = log_in(browser, live_server.url, superuser)
    session.visit(live_server.url + reverse("admin:events_schedule_change", args=[task.pk]))

    # when the operator switches it from the crontab to every second and saves
    page = session.page
    page.select_option("#id_crontab", "")
    page.select_option("#id_interval", str(every_second.pk))
    before_save = timezone.now()
    page.click("input[name=_save]")
    page.wait_for_url(live_server.url + reverse("admin:events_schedule_changelist"))

    # then beat picks the edit up and ticks each second, and the worker records the ticks
    wait_until(
        lambda: count("edited-in-browser") >= 3,
        timeout=30,
        what=f"three ticks of the edited schedule:\nbeat:\n{beat.log()}\nworker:\n"
        f"{tick_worker.log()}",
    )
    beat.stop()
    dues = [tick.due_at for tick in ticks("edited-in-browser", TickStatus.PUBLISHED)]
    assert min(dues) > before_save - timedelta(seconds=1)
    # on the one-second grid, each run time once
    assert {due.microsecond for due in dues} == {0}
    assert len(set(dues)) == len(dues)
    # and the list shows when it runs next
    row = page.locator("#result_list tr", has_text="edited-in-browser")
    assert row.locator("td.field-timing").inner_text() == "every 1 seconds"
    assert row.locator("td.field-next_run").inner_text() != "-"
    assert session.problems == []
