"""The dashboard's panels: dead letters and the backlog per queue (now, and over time from the
sweeper's samples), handler durations, worker and beat liveness, and the agents' tokens and cost
per day (a panel handlers adds through events.extensions)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from events import liveness
from events.dashboard.figures import handler_durations, percentile
from events.dashboard.pipeline import BacklogPanel
from events.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    PipelineSample,
    Route,
    Source,
)
from events.schedules.lock import KEY as BEAT_LOCK
from events.tasks import sweep
from handlers.admin.dashboard import usage_context
from handlers.models import Step, StepKind

from .helpers import listed

pytestmark = pytest.mark.django_db


@pytest.fixture
def now() -> datetime:
    return timezone.now().replace(microsecond=0)


def board(client: Client) -> dict[str, Any]:
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return dict(response.context["dashboard"])


def delivery(source: Source, handler: str, status: str, **fields: Any) -> Delivery:
    made = Event.objects.create(
        source=source,
        external_id=f"e-{Event.objects.count()}",
        type="x",
        payload={},
        status=EventStatus.PROCESSING,
    )
    route = Route.objects.filter(handler=handler).first()
    return Delivery.objects.create(
        event=made, route=route, handler=handler, status=status, **fields
    )


# --- Dead letters and backlog -------------------------------------------------------------


def test_dead_letters_now_by_handler_link_to_their_lists(
    admin_client: Client, hmac_source: Source, routes: None
) -> None:
    for handler in ("test.rebook", "test.rebook", "test.notify"):
        delivery(hmac_source, handler, DeliveryStatus.DEAD_LETTERED)
    delivery(hmac_source, "test.notify", DeliveryStatus.SUCCEEDED)

    dead = board(admin_client)["dead"]

    assert (dead.total, len(listed(admin_client, dead.href))) == (3, 3)
    assert [
        (row.label, row.count, len(listed(admin_client, row.href))) for row in dead.by_handler
    ] == [
        ("test.rebook", 2, 2),
        ("test.notify", 1, 1),
    ]


def test_the_sweep_samples_dead_letters_and_backlog_once_a_minute_and_prunes_old_samples(
    hmac_source: Source, routes: None, now: datetime
) -> None:
    PipelineSample.objects.create(at=now - timedelta(hours=49), dead_letters=9)
    kept = PipelineSample.objects.create(at=now - timedelta(hours=47), dead_letters=8)
    delivery(hmac_source, "test.rebook", DeliveryStatus.DEAD_LETTERED)
    delivery(hmac_source, "test.slow", DeliveryStatus.PENDING)  # queue "chaos"
    delivery(hmac_source, "test.rebook", DeliveryStatus.RETRYING)
    delivery(
        hmac_source,
        "test.rebook",
        DeliveryStatus.RETRYING,
        next_attempt_at=now + timedelta(hours=1),
    )

    sweep()
    sweep()  # the same minute: no second sample

    samples_now = list(PipelineSample.objects.exclude(pk=kept.pk).values("dead_letters", "backlog"))
    assert samples_now == [{"dead_letters": 1, "backlog": {"chaos": 1, "default": 1}}]
    assert PipelineSample.objects.filter(pk=kept.pk).exists()
    assert PipelineSample.objects.count() == 2


def test_dead_letter_depth_is_drawn_from_the_samples_of_the_last_day_and_now(
    admin_client: Client, hmac_source: Source, now: datetime
) -> None:
    for minutes, depth in ((90, 4), (89, 6), (30, 2)):
        PipelineSample.objects.create(at=now - timedelta(minutes=minutes), dead_letters=depth)
    PipelineSample.objects.create(at=now - timedelta(hours=25), dead_letters=50)  # too old
    delivery(hmac_source, "test.rebook", DeliveryStatus.DEAD_LETTERED)

    chart = str(board(admin_client)["dead"].chart)

    # the two samples a minute apart make a line; the lone one, and now, a dot each
    assert (chart.count("<polyline"), chart.count("<circle")) == (1, 2)
    assert ">6</text>" in chart and ">50</text>" not in chart
    assert f'href="{reverse("admin:events_deadletter_changelist")}"' in chart


def test_the_backlog_per_queue_links_to_its_due_deliveries(
    admin_client: Client, hmac_source: Source, routes: None, now: datetime
) -> None:
    waited = timedelta(minutes=3)
    delivery(hmac_source, "test.slow", DeliveryStatus.PENDING, next_attempt_at=now - waited)
    delivery(hmac_source, "test.chaos", DeliveryStatus.RETRYING, next_attempt_at=now)
    delivery(hmac_source, "test.rebook", DeliveryStatus.PENDING, next_attempt_at=now)
    delivery(hmac_source, "test.rebook", DeliveryStatus.RETRYING, next_attempt_at=now + waited)
    delivery(hmac_source, "test.rebook", DeliveryStatus.RUNNING)
    orphan = delivery(hmac_source, "test.gone", DeliveryStatus.PENDING, next_attempt_at=now)
    assert orphan.route is None  # counted in the default queue

    backlog: BacklogPanel = board(admin_client)["backlog"]
    queues = backlog.queues

    assert [(q.queue, q.count) for q in queues] == [("chaos", 2), ("default", 2)]
    assert queues[0].waited_seconds >= 180
    assert [len(listed(admin_client, q.href)) for q in queues] == [2, 2]
    assert "<title>chaos</title>" in str(backlog.chart)
    assert backlog.legend == (("chaos", "series-0"), ("default", "series-1"))


# --- Handler durations --------------------------------------------------------------------


def test_handler_durations_are_p50_and_p95_of_the_last_hours_finished_attempts(
    hmac_source: Source, now: datetime
) -> None:
    rebook = delivery(hmac_source, "test.rebook", DeliveryStatus.SUCCEEDED)
    for n in range(1, 11):
        Attempt.objects.create(
            delivery=rebook, number=n, started_at=now - timedelta(minutes=10), duration_ms=100 * n
        )
    Attempt.objects.create(
        delivery=rebook, number=11, started_at=now - timedelta(hours=2), duration_ms=99_999
    )
    Attempt.objects.create(delivery=rebook, number=12, started_at=now)  # still running
    notify = delivery(hmac_source, "test.notify", DeliveryStatus.SUCCEEDED)
    Attempt.objects.create(delivery=notify, number=1, started_at=now, duration_ms=40)

    assert [
        (d.handler, d.attempts, round(d.p50_ms, 6), round(d.p95_ms, 6))
        for d in handler_durations(now)
    ] == [("test.rebook", 10, 550.0, 955.0), ("test.notify", 1, 40.0, 40.0)]
    # the same figures without PostgreSQL (the demo's SQLite)
    durations = [100 * n for n in range(1, 11)]
    assert (percentile(durations, 0.5), round(percentile(durations, 0.95), 6)) == (550.0, 955.0)


def test_each_durations_row_links_to_its_handlers_deliveries(
    admin_client: Client, hmac_source: Source, now: datetime
) -> None:
    rebook = delivery(hmac_source, "test.rebook", DeliveryStatus.SUCCEEDED)
    Attempt.objects.create(delivery=rebook, number=1, started_at=now, duration_ms=5)
    delivery(hmac_source, "test.notify", DeliveryStatus.SUCCEEDED)

    chart = str(board(admin_client)["durations_chart"])

    href = reverse("admin:events_delivery_changelist") + "?handler=test.rebook"
    assert f'<a href="{href}">' in chart
    assert [d.handler for d in listed(admin_client, href)] == ["test.rebook"]


# --- Liveness -----------------------------------------------------------------------------


@pytest.fixture
def heartbeat() -> Iterator[None]:
    redis = liveness.client()
    for key in redis.scan_iter(match=liveness.PREFIX + "*"):
        redis.delete(key)
    redis.delete(BEAT_LOCK)
    redis.set(liveness.PREFIX + "celery@w1", json.dumps({"queues": ["default", "maintenance"]}))
    yield
    redis.delete(liveness.PREFIX + "celery@w1")


def test_liveness_names_live_workers_their_queues_and_what_is_missing(
    admin_client: Client, heartbeat: None, routes: None
) -> None:
    alive = board(admin_client)["alive"]

    assert alive.workers == (("celery@w1", ("default", "maintenance")),)
    assert alive.workers_check["ok"] is False
    assert alive.workers_check["detail"] == (
        "no live worker consumes agents-http, agents-wait, breakers, chaos, dispatch, limits"
    )
    assert alive.beat_check == {"ok": False, "detail": "no beat holds the lock"}

    liveness.client().set(BEAT_LOCK, "another-beat", ex=30)
    try:
        assert board(admin_client)["alive"].beat_check["ok"] is True
    finally:
        liveness.client().delete(BEAT_LOCK)


# --- The agents' panel --------------------------------------------------------------------


def llm_step(attempt: Attempt, number: int, at: datetime, tokens: int, cost: str) -> Step:
    return Step.objects.create(
        attempt=attempt,
        number=number,
        kind=StepKind.LLM,
        name="claude",
        input_tokens=tokens - 10,
        output_tokens=10,
        cost_usd=Decimal(cost),
        created_at=at,
    )


def test_the_agents_panel_sums_tokens_and_cost_per_agent_per_day(
    admin_user: User, hmac_source: Source, now: datetime
) -> None:
    triage = delivery(hmac_source, "support.triage", DeliveryStatus.SUCCEEDED)
    attempt = Attempt.objects.create(delivery=triage, number=1, started_at=now)
    llm_step(attempt, 1, now, 120, "0.010000")
    llm_step(attempt, 2, now, 60, "0.020000")
    llm_step(attempt, 3, now - timedelta(days=1), 500, "0.100000")
    llm_step(attempt, 4, now - timedelta(days=8), 999, "9.000000")  # before the panel's week
    Step.objects.create(attempt=attempt, number=5, kind=StepKind.TOOL, name="lookup")
    review = delivery(hmac_source, "github.pr_review", DeliveryStatus.SUCCEEDED)
    llm_step(Attempt.objects.create(delivery=review, number=1), 1, now, 1000, "0.300000")
    request = RequestFactory().get("/admin/")
    request.user = admin_user

    panel = usage_context(request, now)

    assert panel is not None
    today, yesterday = timezone.localdate(now), timezone.localdate(now - timedelta(days=1))
    assert panel["days"][-2:] == [yesterday, today] and len(panel["days"]) == 7
    figures = {
        (row["handler"], day): (cell["tokens"], cell["cost"])
        for row in panel["table"]
        for day, cell in zip(panel["days"], row["days"], strict=True)
        if cell["tokens"]
    }
    assert figures == {
        ("github.pr_review", today): (1000, Decimal("0.3")),
        ("support.triage", yesterday): (500, Decimal("0.1")),
        ("support.triage", today): (180, Decimal("0.03")),
    }


def test_each_agent_figure_links_to_that_agents_deliveries_of_the_day(
    admin_client: Client, hmac_source: Source, now: datetime
) -> None:
    triage = delivery(hmac_source, "support.triage", DeliveryStatus.SUCCEEDED)
    llm_step(Attempt.objects.create(delivery=triage, number=1), 1, now, 120, "0.01")
    delivery(
        hmac_source, "support.triage", DeliveryStatus.SUCCEEDED, created_at=now - timedelta(days=2)
    )
    delivery(hmac_source, "alerts.triage", DeliveryStatus.SUCCEEDED)

    page = admin_client.get(reverse("admin:index")).content.decode()
    (panel,) = board(admin_client)["panels"]
    assert 'id="agent-figures"' in panel.html and 'id="agent-figures"' in page
    start = panel.html.index('id="agent-figures"')
    cells = [
        part.split('"', 1)[0].replace("&amp;", "&")
        for part in panel.html[start:].split('class="figure" href="')[1:]
    ]

    # one agent, seven days: today's figure is the last
    assert len(cells) == 7
    assert [d.pk for d in listed(admin_client, cells[-1])] == [triage.pk]
