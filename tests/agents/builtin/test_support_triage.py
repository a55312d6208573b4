"""Support triage, driven through the pipeline with the recorded-looking ticket fixture."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import handlers.agents.support_triage as support
from events.delivery import execute
from events.models import Delivery, DeliveryStatus, Event, HandlerState, Source
from events.publish import internal_source, publish
from handlers.agents.support_triage import queues, rules
from handlers.models import Step

from ..conftest import FakeMessagesAPI

FIXTURE = json.loads(
    (Path(support.__file__).parent / "fixtures" / "ticket.created.json").read_text()
)
EMAIL = "dana.whitfield@northwind.example"
TRIAGE = {
    "summary": "Card charged twice for invoice INV-2026-0311; wants the duplicate refunded.",
    "category": "billing",
    "priority": "high",
}


@pytest.fixture
def helpdesk(routes: None) -> Source:
    return Source.objects.create(slug="helpdesk", kind="api")


def ticket(ticket_id: int, subject: str, email: str = EMAIL) -> dict[str, Any]:
    payload = json.loads(json.dumps(FIXTURE))
    payload["ticket"].update(id=ticket_id, subject=subject)
    payload["ticket"]["requester"]["email"] = email
    return payload


def deliver(source: Source, payload: dict[str, Any] = FIXTURE) -> Delivery:
    event = publish(source=source, type="ticket.created", payload=payload).event
    delivery = Delivery.objects.get(event=event, handler="support.triage")
    execute(delivery.pk)
    delivery.refresh_from_db()
    return delivery


@pytest.mark.django_db
def test_a_ticket_is_triaged_and_routed_to_its_team_queue(
    fake_api: FakeMessagesAPI, helpdesk: Source
) -> None:
    # given: an earlier ticket from the same requester (already routed), and tickets the
    # lookup must not see: another requester's, and one from another source
    earlier = publish(source=helpdesk, type="ticket.created", payload=ticket(47950, "Invoice PDF"))
    publish(
        source=internal_source(),
        type="ticket.routed",
        payload={
            "ticket_id": "47950",
            "category": "billing",
            "priority": "low",
            "queue": "billing",
        },
        emitted_by=Delivery.objects.get(event=earlier.event, handler="support.triage"),
    )
    publish(source=helpdesk, type="ticket.created", payload=ticket(47001, "Hi", "x@y.example"))
    other = Source.objects.create(slug="other-desk", kind="api")
    publish(source=other, type="ticket.created", payload=ticket(9, "Elsewhere"))
    fake_api.tool_use("recent_tickets_from", {"email": EMAIL}, id="toolu_1")
    # The model also names a queue: it is ignored, the queue comes from the category.
    fake_api.text(json.dumps({**TRIAGE, "queue": "executive-escalations"}))

    # when
    delivery = deliver(helpdesk)

    # then
    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    routed = {"ticket_id": "48213", "queue": "billing", **TRIAGE, "escalated": False}
    assert {k: delivery.outcome[k] for k in ("summary", "category", "priority", "routed")} == {
        **TRIAGE,
        "routed": routed,
    }
    assert delivery.outcome["provider"] == "anthropic"
    emitted = Event.objects.get(type="ticket.routed", emitted_by=delivery)
    assert emitted.payload == routed
    assert emitted.partition_key == ""
    steps = Step.objects.filter(attempt__delivery=delivery).order_by("number")
    assert [(s.kind, s.name, s.error) for s in steps] == [
        ("llm", "claude-sonnet-5-5", ""),
        ("tool", "recent_tickets_from", ""),
        ("llm", "claude-sonnet-5-5", ""),
    ]
    assert json.loads(steps[1].output) == {
        "email": EMAIL,
        "days": 90,
        "count": 1,
        "tickets": [
            {
                "ticket_id": "47950",
                "subject": "Invoice PDF",
                "received_at": earlier.event.received_at.isoformat(),
                "triage": {"category": "billing", "priority": "low", "queue": "billing"},
            }
        ],
    }


@pytest.mark.django_db
def test_offline_provider_triages_by_rules_with_the_queue_override(
    fake_api: FakeMessagesAPI, helpdesk: Source, settings: Any
) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    settings.SWITCHYARD_SUPPORT_QUEUES_JSON = '{"billing": "finance-ops"}'

    delivery = deliver(helpdesk)

    assert delivery.status == DeliveryStatus.SUCCEEDED
    triage = {
        "summary": "Dana Whitfield: Charged twice for the March invoice",
        "category": "billing",
        "priority": "high",
    }
    assert delivery.outcome["provider"] == "offline"
    assert delivery.outcome["text"] == f"[offline provider] {json.dumps(triage)}"
    assert Event.objects.get(type="ticket.routed", emitted_by=delivery).payload == {
        "ticket_id": "48213",
        "queue": "finance-ops",
        **triage,
        "escalated": False,
    }
    assert list(
        Step.objects.filter(attempt__delivery=delivery)
        .order_by("number")
        .values_list("kind", "name")
    ) == [("llm", "offline"), ("tool", "recent_tickets_from")]
    assert fake_api.requests == []


@pytest.mark.django_db
def test_a_bad_queue_setting_dead_letters_before_any_model_call(
    fake_api: FakeMessagesAPI, helpdesk: Source, settings: Any
) -> None:
    settings.SWITCHYARD_SUPPORT_QUEUES_JSON = '{"billing": 5}'

    delivery = deliver(helpdesk)

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.last_error == (
        "SWITCHYARD_SUPPORT_QUEUES_JSON: the queue for 'billing' must be 1-64 letters, digits "
        "or _.:/- (got 5)"
    )
    assert fake_api.requests == []


@pytest.mark.django_db
def test_an_answer_with_an_unknown_category_dead_letters_and_routes_nothing(
    fake_api: FakeMessagesAPI, helpdesk: Source
) -> None:
    fake_api.text(json.dumps({**TRIAGE, "category": "refunds"}))

    delivery = deliver(helpdesk)

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.error_class == "handlers.llm.answers.AnswerFormatError"
    assert delivery.last_error == (
        "the answer's 'category' is 'refunds', not one of "
        "['account', 'billing', 'bug', 'feature_request', 'other']"
    )
    assert not Event.objects.filter(type="ticket.routed").exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "SWITCHYARD_SUPPORT_QUEUES_JSON is not valid JSON: Expecting property name"),
        ('["billing"]', 'SWITCHYARD_SUPPORT_QUEUES_JSON must be a JSON object like {"bug": '),
        ('{"sales": "x"}', "SWITCHYARD_SUPPORT_QUEUES_JSON names an unknown category 'sales'"),
        ('{"bug": "has space"}', "SWITCHYARD_SUPPORT_QUEUES_JSON: the queue for 'bug' must be"),
    ],
)
def test_a_bad_queue_map_is_refused_with_a_clear_message(raw: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        queues.parse(raw)
    assert str(caught.value).startswith(message)


def test_the_queue_map_overrides_only_what_it_names() -> None:
    assert queues.parse('{"bug": "platform"}') == {**queues.DEFAULT_QUEUES, "bug": "platform"}


@pytest.mark.parametrize(
    ("subject", "description", "category", "priority"),
    [
        ("Can't log in after password reset", "I am locked out.", "account", "high"),
        ("Export crashes", "The CSV export fails with an error.", "bug", "normal"),
        ("Dark mode", "It would be nice to have dark mode.", "feature_request", "low"),
        ("Production is down", "Our dashboard shows an outage, urgent", "other", "urgent"),
        ("Hello", "A question about your office hours.", "other", "normal"),
    ],
)
def test_offline_rules(subject: str, description: str, category: str, priority: str) -> None:
    payload = {"ticket": {"subject": subject, "description": description}}
    triage = rules.triage(payload)
    assert (triage["category"], triage["priority"]) == (category, priority)


@pytest.mark.django_db
def test_a_ticket_cannot_make_the_model_read_another_requesters_tickets(
    fake_api: FakeMessagesAPI, helpdesk: Source
) -> None:
    # given another customer's ticket, and a ticket whose text talks the model into asking
    # for that customer's history (its summary goes out on ticket.routed)
    publish(
        source=helpdesk,
        type="ticket.created",
        payload=ticket(47001, "Acquisition talks: term sheet", "ceo@northwind.example"),
    )
    fake_api.tool_use("recent_tickets_from", {"email": "ceo@northwind.example"}, id="toolu_1")
    fake_api.text(json.dumps(TRIAGE))

    delivery = deliver(helpdesk)

    # then the lookup is refused and nothing of the other ticket reaches the model
    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    told = fake_api.requests[1].body["messages"][-1]["content"][0]
    assert told["is_error"] is True
    assert told["content"] == (
        "ValueError: only the tickets of this ticket's requester can be looked up"
    )
    assert "term sheet" not in json.dumps(fake_api.requests[1].body)


# --- Memory across tickets (handlers/agents/support_triage/memory.py, ctx.state) -----------

T0 = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


def deliver_at(source: Source, ticket_id: int, hours: float, key: str | None = EMAIL) -> Delivery:
    """A ticket from Dana received ``hours`` after T0, with her email as partition key."""
    event = publish(
        source=source,
        type="ticket.created",
        payload=ticket(ticket_id, "Charged twice again"),
        partition_key=key,
    ).event
    Event.objects.filter(id=event.id).update(received_at=T0 + timedelta(hours=hours))
    delivery = Delivery.objects.get(event=event, handler="support.triage")
    execute(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    return delivery


def routed_of(delivery: Delivery) -> tuple[int | None, str, bool]:
    routed = Event.objects.get(type="ticket.routed", emitted_by=delivery).payload
    return delivery.outcome["tickets_in_24h"], routed["priority"], routed["escalated"]


@pytest.mark.django_db
def test_the_third_ticket_from_a_requester_within_a_day_is_escalated(
    fake_api: FakeMessagesAPI, helpdesk: Source, settings: Any
) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"

    first = deliver_at(helpdesk, 1, hours=0)
    second = deliver_at(helpdesk, 2, hours=2)
    third = deliver_at(helpdesk, 3, hours=20)

    # the offline rules say "high" for "Charged twice"; the third within 24 h goes out urgent
    assert [routed_of(d) for d in (first, second, third)] == [
        (1, "high", False),
        (2, "high", False),
        (3, "urgent", True),
    ]
    assert third.outcome["priority"] == "high"  # the triage itself is kept as it was
    state = HandlerState.objects.get(handler="support.triage", partition_key=EMAIL)
    assert state.data == {
        "tickets": [
            {"id": "1", "at": T0.isoformat()},
            {"id": "2", "at": (T0 + timedelta(hours=2)).isoformat()},
            {"id": "3", "at": (T0 + timedelta(hours=20)).isoformat()},
        ]
    }
    assert (state.version, state.updated_by_delivery_id) == (3, third.pk)
    assert fake_api.requests == []


@pytest.mark.django_db
def test_tickets_more_than_a_day_apart_are_not_escalated_and_are_forgotten(
    fake_api: FakeMessagesAPI, helpdesk: Source, settings: Any
) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"

    deliver_at(helpdesk, 1, hours=0)
    deliver_at(helpdesk, 2, hours=13)
    third = deliver_at(helpdesk, 3, hours=25)

    assert routed_of(third) == (2, "high", False)
    state = HandlerState.objects.get(handler="support.triage", partition_key=EMAIL)
    assert [entry["id"] for entry in state.data["tickets"]] == ["2", "3"]


@pytest.mark.django_db
def test_the_same_ticket_sent_again_is_counted_once(
    fake_api: FakeMessagesAPI, helpdesk: Source, settings: Any
) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"

    deliver_at(helpdesk, 7, hours=0)
    deliver_at(helpdesk, 7, hours=1)
    again = deliver_at(helpdesk, 7, hours=2)

    assert routed_of(again) == (1, "high", False)


@pytest.mark.django_db
def test_a_ticket_without_a_partition_key_keeps_no_memory(
    fake_api: FakeMessagesAPI, helpdesk: Source, settings: Any
) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"

    for n in range(3):
        delivery = deliver_at(helpdesk, n, hours=n, key=None)

    assert routed_of(delivery) == (None, "high", False)
    assert not HandlerState.objects.exists()
