"""Daily briefing (handlers/agents/daily_briefing): a ``schedule.daily-briefing`` event becomes a
briefing of the pipeline's last 24 hours, written from pipeline_summary; emailed once per
delivery when SWITCHYARD_BRIEFING_RECIPIENTS is set.

The history is made by the real pipeline: events published and their deliveries executed (one
dead-lettered by its handler), an agent run against the fake Messages API for token and cost
totals, and an event from before the window.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from events.delivery import execute
from events.models import Delivery, DeliveryStatus, Event, Source
from events.publish import publish
from events.transitions import requeue
from handlers.agents import daily_briefing
from handlers.agents.daily_briefing import briefing, summary
from handlers.models import Approval, Step

from ..conftest import FakeMessagesAPI

pytestmark = pytest.mark.django_db

FIXTURE = Path(daily_briefing.__file__).parent / "fixtures" / "schedule.daily-briefing.json"
RECIPIENTS = ["oncall@example.com", "lead@example.com"]
BRIEFING = {
    "headline": "A quiet day: 5 events, one dead letter in test.notify.",
    "highlights": ["scenario.reservation.cancelled was busiest (3).", "Agents spent $0.00014."],
    "attention": ["test.notify dead-lettered: guest record is incomplete."],
}


@pytest.fixture
def source(routes: None) -> Source:
    return Source.objects.create(slug="shop", kind="api")


def run(delivery: Delivery) -> Delivery:
    execute(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def run_all(event: Event) -> None:
    for delivery in Delivery.objects.filter(event=event):
        run(delivery)


@pytest.fixture
def history(fake_api: FakeMessagesAPI, source: Source) -> None:
    """Five events in the window (3 processed, 1 dead-lettered, 1 ignored), one before it,
    two LLM calls of test.agent, one pending approval."""
    for payload in ({"guest": "ana"}, {"guest": "ben"}, {"guest": "cy", "fail": "permanent"}):
        run_all(
            publish(source=source, type="scenario.reservation.cancelled", payload=payload).event
        )
    fake_api.tool_use("lookup_order", {"order_id": "A-1"}, id="toolu_h1")
    fake_api.text("Order A-1 has shipped.")
    run_all(publish(source=source, type="test.agent", payload={"order": "A-1"}).event)
    publish(source=source, type="unrouted.thing", payload={})
    old = publish(source=source, type="old.event", payload={}).event
    Event.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(hours=30))
    dead = Delivery.objects.get(status=DeliveryStatus.DEAD_LETTERED)
    Approval.objects.create(
        delivery=dead, agent="test.refunder", tool="refund", input={}, idempotency_key="k"
    )


def schedule_event(payload: dict[str, Any] | None = None) -> Delivery:
    schedules = Source.objects.get_or_create(slug="schedules", kind="schedule")[0]
    document = json.loads(FIXTURE.read_text()) if payload is None else payload
    event = publish(source=schedules, type="schedule.daily-briefing", payload=document).event
    return Delivery.objects.get(event=event, handler="briefing.daily")


def test_pipeline_summary_counts_the_last_day(history: None) -> None:
    result = summary.pipeline_summary(24)

    assert result["window"]["hours"] == 24
    assert result["events"] == {
        "total": 5,
        "by_status": {"dead_lettered": 1, "ignored": 1, "processed": 3},
        "by_type": [
            {
                "type": "scenario.reservation.cancelled",
                "total": 3,
                "statuses": {"dead_lettered": 1, "processed": 2},
            },
            {"type": "test.agent", "total": 1, "statuses": {"processed": 1}},
            {"type": "unrouted.thing", "total": 1, "statuses": {"ignored": 1}},
        ],
        "more_types": 0,
    }
    assert result["deliveries"] == {"by_status": {"dead_lettered": 1, "succeeded": 6}}
    dead = Delivery.objects.get(status=DeliveryStatus.DEAD_LETTERED)
    assert result["dead_letters"] == {
        "total": 1,
        "by_handler": [{"handler": "test.notify", "count": 1}],
        "newest": [
            {
                "delivery": dead.pk,
                "handler": "test.notify",
                "event_type": "scenario.reservation.cancelled",
                "error_class": "PermanentError",
                "error": "guest record is incomplete",
                "finished_at": dead.finished_at.isoformat(),
            }
        ],
    }
    # Two calls of 10 input + 5 output tokens at claude-sonnet-5-5's $2 / $10 per million.
    assert result["agents"] == {
        "llm_calls": 2,
        "tokens": 30,
        "cost_usd": "0.000140",
        "by_handler": [
            {"handler": "test.agent", "llm_calls": 2, "tokens": 30, "cost_usd": "0.000140"}
        ],
    }
    approval = Approval.objects.get()
    assert result["approvals"] == {
        "pending": 1,
        "oldest_pending_at": approval.created_at.isoformat(),
    }
    json.dumps(result)  # JSON-safe as it is


def test_briefing_through_the_pipeline_is_emailed_once(
    fake_api: FakeMessagesAPI, history: None, settings: Any
) -> None:
    # given recipients, and a model that reads the summary and writes the briefing
    settings.SWITCHYARD_BRIEFING_RECIPIENTS = RECIPIENTS
    fake_api.tool_use("pipeline_summary", {"hours": 24}, id="toolu_1")
    fake_api.text(json.dumps(BRIEFING))

    # when the schedule's event is delivered
    delivery = run(schedule_event())

    # then the briefing is the outcome and went out by email
    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    outcome = delivery.outcome
    assert outcome["briefing"] == BRIEFING
    assert outcome["window"]["hours"] == 24
    assert outcome["provider"] == "anthropic" and outcome["turns"] == 2
    assert outcome["emailed"]["to"] == RECIPIENTS
    steps = Step.objects.filter(attempt__delivery=delivery).order_by("number")
    assert [(s.kind, s.name) for s in steps] == [
        ("llm", "claude-sonnet-5-5"),
        ("tool", "pipeline_summary"),
        ("llm", "claude-sonnet-5-5"),
    ]
    seen = json.loads(steps[1].output)
    assert seen["dead_letters"]["newest"][0]["error"] == "guest record is incomplete"
    assert seen["agents"]["by_handler"][0]["handler"] == "test.agent"
    assert fake_api.requests[3].body["messages"][-1]["content"][0]["content"] == steps[1].output
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == RECIPIENTS
    assert sent.subject == f"Switchyard briefing: {BRIEFING['headline']}"
    assert sent.body.startswith(
        f"{BRIEFING['headline']}\n\nHighlights:\n"
        "- scenario.reservation.cancelled was busiest (3).\n- Agents spent $0.00014.\n\n"
        "Needs attention:\n- test.notify dead-lettered: guest record is incomplete.\n\n"
        "Window: "
    )

    # when the delivery runs again (requeued), the model writes again but nobody is re-mailed
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD_LETTERED)
    requeue([delivery.pk])
    fake_api.tool_use("pipeline_summary", {"hours": 24}, id="toolu_2")
    fake_api.text(json.dumps(BRIEFING))
    again = run(delivery)
    assert again.status == DeliveryStatus.SUCCEEDED, again.last_error
    assert again.outcome["emailed"] == outcome["emailed"]
    assert len(mail.outbox) == 1


def test_offline_briefing_is_written_from_the_numbers(
    history: None, settings: Any, fake_api: FakeMessagesAPI
) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    settings.SWITCHYARD_BRIEFING_RECIPIENTS = []

    delivery = run(schedule_event({}))

    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    outcome = delivery.outcome
    assert outcome["provider"] == "offline"
    assert outcome["text"].startswith("[offline provider] ")
    assert outcome["emailed"] is None and mail.outbox == []
    oldest = Approval.objects.get().created_at.isoformat()
    # The briefing's own event is counted (processing); its offline call has no tokens.
    assert outcome["briefing"] == {
        "headline": "6 events in the last 24 hours: 3 processed, 1 dead-lettered.",
        "highlights": [
            "Busiest event types: scenario.reservation.cancelled (3), "
            "schedule.daily-briefing (1), test.agent (1).",
            "Deliveries: 1 dead_lettered, 1 running, 6 succeeded.",
            "1 event matched no route.",
            "Agents made 3 model calls using 30 tokens ($0.000140); the most by test.agent "
            "($0.000140).",
        ],
        "attention": [
            "1 dead letter for test.notify; newest: PermanentError: guest record is incomplete.",
            f"1 approval waiting, the oldest since {oldest}.",
        ],
    }
    tool_step = Step.objects.get(attempt__delivery=delivery, kind="tool")
    assert (tool_step.name, tool_step.input) == ("pipeline_summary", {"hours": 24})
    assert len(fake_api.requests) == 2  # the history's agent run; the briefing made none


def test_offline_briefing_of_an_empty_day(db: None) -> None:
    written = briefing.from_numbers(summary.pipeline_summary(24))

    assert written == {
        "headline": "No events in the last 24 hours.",
        "highlights": ["No agent made a model call."],
        "attention": [],
    }


def test_summary_is_bounded_and_newest_first(source: Source) -> None:
    # given more dead letters and more event types than the summary lists
    for number in range(12):
        event = publish(
            source=source,
            type="scenario.reservation.cancelled",
            payload={"guest": f"g{number}", "fail": "permanent"},
        ).event
        run(Delivery.objects.get(event=event, handler="test.notify"))
    for number in range(23):
        publish(source=source, type=f"unrouted.kind{number:02d}", payload={})

    result = summary.pipeline_summary(24)

    dead = result["dead_letters"]
    assert dead["total"] == 12 and dead["by_handler"] == [{"handler": "test.notify", "count": 12}]
    newest = list(
        Delivery.objects.filter(status=DeliveryStatus.DEAD_LETTERED)
        .order_by("-finished_at", "-id")
        .values_list("id", flat=True)[:10]
    )
    assert [row["delivery"] for row in dead["newest"]] == newest
    assert len(result["events"]["by_type"]) == 20
    assert result["events"]["by_type"][0]["type"] == "scenario.reservation.cancelled"
    assert result["events"]["more_types"] == 4
    assert summary.short("x" * 500 + "\nsecond line") == "x" * 159 + "…"


def test_a_bad_answer_is_dead_lettered_with_the_reason(
    fake_api: FakeMessagesAPI, source: Source
) -> None:
    fake_api.tool_use("pipeline_summary", {"hours": 24}, id="toolu_1")
    fake_api.text(json.dumps({**BRIEFING, "attention": [{"text": "not a string"}]}))

    delivery = run(schedule_event())

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.error_class == "handlers.llm.answers.AnswerFormatError"
    assert delivery.last_error == "the answer's 'attention' must be a list of strings"


def test_a_bad_window_is_dead_lettered_before_any_model_call(
    fake_api: FakeMessagesAPI, source: Source
) -> None:
    delivery = run(schedule_event({"hours": 0}))

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.last_error == (
        "the schedule's 'hours' must be a whole number from 1 to 168, not 0"
    )
    assert fake_api.requests == []
