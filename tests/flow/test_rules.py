"""A route's concurrency cap and key order, decided in the claim: execute() (what the Celery
task calls) against real PostgreSQL, the wake-ups' messages captured at events.dispatch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events import dispatch
from events.delivery import execute
from events.models import Attempt, Delivery, Route, Source
from events.publish import publish
from events.transitions import Claim, claim, requeue, resolve, succeed
from events.transitions.flow import describe
from tests.admin.helpers import form_errors

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The delivery ids whose messages are sent (publish's and the wake-ups')."""
    ids: list[int] = []
    monkeypatch.setattr(dispatch, "enqueue", lambda jobs: ids.extend(j[0] for j in jobs))
    return ids


def _deliveries(source: Source, count: int, key: str = "", **payload: Any) -> list[Delivery]:
    events = [
        publish(source=source, type="test.flow", payload=payload, partition_key=key or None).event
        for _ in range(count)
    ]
    return [Delivery.objects.get(event=event) for event in events]


def _start(delivery: Delivery) -> None:
    """Claim the delivery as a worker would, leaving it running."""
    assert isinstance(claim(delivery.id), Claim)
    assert Delivery.objects.get(id=delivery.id).status == "running"


def test_a_route_at_its_concurrency_holds_the_next_delivery_without_an_attempt(
    flow_source: Source, flow_route: Route, sent: list[int]
) -> None:
    # given a route capped at 2 with two deliveries running
    Route.objects.filter(id=flow_route.id).update(max_concurrency=2)
    first, second, third = _deliveries(flow_source, 3)
    _start(first)
    _start(second)

    # when the third one's message arrives
    outcome = execute(third.id)

    # then it is held: no attempt, a long fallback wait, and why on its page
    assert outcome.status == "deferred"
    assert outcome.retry_in is not None and 30 <= outcome.retry_in <= 36
    third.refresh_from_db()
    assert (third.status, third.attempts, third.total_attempts) == ("pending", 0, 0)
    assert (third.held_by, third.deferrals) == ("concurrency", 1)
    assert third.deferred_reason == "route at its concurrency 2"
    assert describe(third) == "held (concurrency): route at its concurrency 2"
    assert not Attempt.objects.filter(delivery=third).exists()


def test_a_running_delivery_whose_lease_lapsed_does_not_count(
    flow_source: Source, flow_route: Route, sent: list[int]
) -> None:
    Route.objects.filter(id=flow_route.id).update(max_concurrency=1)
    first, second = _deliveries(flow_source, 2)
    _start(first)
    Delivery.objects.filter(id=first.id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert execute(second.id).status == "succeeded"


def test_a_finished_delivery_wakes_the_oldest_held_one_at_once(
    flow_source: Source,
    flow_route: Route,
    sent: list[int],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # given a route capped at 1: one delivery running, two held
    Route.objects.filter(id=flow_route.id).update(max_concurrency=1)
    first, second, third = _deliveries(flow_source, 3)
    claimed = claim(first.id)
    assert isinstance(claimed, Claim)
    assert execute(second.id).status == "deferred"
    assert execute(third.id).status == "deferred"
    sent.clear()

    # when the running one succeeds
    with django_capture_on_commit_callbacks(execute=True):
        succeed(claimed, None, [], timezone.now())

    # then the oldest held one is sent at once, due now, and runs
    assert sent == [second.id]
    second.refresh_from_db()
    assert second.next_attempt_at <= timezone.now()
    assert execute(second.id).status == "succeeded"
    second.refresh_from_db()
    assert (second.held_by, second.attempts) == ("", 1)


def test_later_deliveries_of_a_key_wait_for_the_earlier_and_other_keys_run(
    flow_source: Source,
    flow_route: Route,
    sent: list[int],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # given an ordered route, two deliveries of key acme and one of key zeta
    Route.objects.filter(id=flow_route.id).update(ordered_by_key=True)
    a1, a2 = _deliveries(flow_source, 2, key="acme")
    (z1,) = _deliveries(flow_source, 1, key="zeta")

    # when the later acme one comes first, it waits; zeta runs meanwhile
    assert execute(a2.id).status == "deferred"
    a2.refresh_from_db()
    assert (a2.held_by, a2.deferred_reason) == ("key", f"waiting for delivery {a1.id} of key acme")
    assert execute(z1.id).status == "succeeded"
    sent.clear()

    # then the earlier one's success wakes it, and it runs
    with django_capture_on_commit_callbacks(execute=True):
        assert execute(a1.id).status == "succeeded"
    assert sent == [a2.id]
    assert execute(a2.id).status == "succeeded"


def test_a_retrying_delivery_keeps_its_key_blocked(
    flow_source: Source,
    flow_route: Route,
    sent: list[int],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # given an ordered route whose first acme delivery fails once
    Route.objects.filter(id=flow_route.id).update(ordered_by_key=True)
    (a1,) = _deliveries(flow_source, 1, key="acme", fail_once=True)
    (a2,) = _deliveries(flow_source, 1, key="acme")
    assert execute(a1.id).status == "retrying"

    # then the next one waits while it is retrying
    assert execute(a2.id).status == "deferred"
    sent.clear()

    # and its success on the retry wakes the next, which runs
    Delivery.objects.filter(id=a1.id).update(next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert execute(a1.id).status == "succeeded"
    assert sent == [a2.id]
    assert execute(a2.id).status == "succeeded"


def _dead_letter(delivery: Delivery) -> None:
    Delivery.objects.filter(id=delivery.id).update(
        status="dead_lettered", finished_at=timezone.now()
    )


def test_a_dead_letter_blocks_its_key_until_resolved(
    flow_source: Source,
    flow_route: Route,
    sent: list[int],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # given an ordered route that blocks on a dead letter, whose first acme delivery is one
    Route.objects.filter(id=flow_route.id).update(ordered_by_key=True, on_dead_letter="block")
    a1, a2 = _deliveries(flow_source, 2, key="acme")
    _dead_letter(a1)

    # then the next one waits, and the dead letter's page says it blocks its key
    assert execute(a2.id).status == "deferred"
    a2.refresh_from_db()
    assert a2.deferred_reason == f"key acme blocked by dead letter {a1.id}"
    a1.refresh_from_db()
    assert describe(a1).startswith("blocks key acme: ")
    sent.clear()

    # when an operator resolves it, the key's next is woken and runs
    with django_capture_on_commit_callbacks(execute=True):
        assert resolve([a1.id], by="ops") == 1
    assert sent == [a2.id]
    assert execute(a2.id).status == "succeeded"


def test_a_requeued_dead_letter_runs_before_the_rest_of_its_key(
    flow_source: Source, flow_route: Route, sent: list[int]
) -> None:
    Route.objects.filter(id=flow_route.id).update(ordered_by_key=True, on_dead_letter="block")
    a1, a2 = _deliveries(flow_source, 2, key="acme")
    _dead_letter(a1)
    assert requeue([a1.id]) == 1
    assert execute(a2.id).status == "deferred"
    assert execute(a1.id).status == "succeeded"
    Delivery.objects.filter(id=a2.id).update(next_attempt_at=timezone.now())
    assert execute(a2.id).status == "succeeded"


def test_a_dead_letter_on_a_skipping_route_does_not_block(
    flow_source: Source, flow_route: Route, sent: list[int]
) -> None:
    Route.objects.filter(id=flow_route.id).update(ordered_by_key=True, on_dead_letter="skip")
    a1, a2 = _deliveries(flow_source, 2, key="acme")
    _dead_letter(a1)
    a1.refresh_from_db()
    assert describe(a1) == "skipped: key acme's later deliveries go on"
    assert execute(a2.id).status == "succeeded"


def test_deliveries_without_a_key_are_not_ordered(
    flow_source: Source, flow_route: Route, sent: list[int]
) -> None:
    Route.objects.filter(id=flow_route.id).update(ordered_by_key=True)
    first, second = _deliveries(flow_source, 2)
    assert execute(second.id).status == "succeeded"
    assert execute(first.id).status == "succeeded"


def test_a_routes_concurrency_and_order_are_edited_in_the_admin(
    admin_client: Client, flow_route: Route, flow_source: Source
) -> None:
    # given the route's page, saved with a cap of 3, ordered by key, skipping dead letters
    url = reverse("admin:events_route_change", args=[flow_route.pk])
    form = {
        "name": flow_route.name,
        "event_type": flow_route.event_type,
        "payload_filter": "{}",
        "handler": flow_route.handler,
        "enabled": "on",
        "max_attempts": "3",
        "backoff_base": "0.2",
        "backoff_max": "1.0",
        "backoff_jitter": "0.25",
        "time_limit": "60",
        "queue": "flow",
        "rate_burst": "1",
        "resources": "[]",
        "max_concurrency": "3",
        "ordered_by_key": "on",
        "on_dead_letter": "skip",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, form_errors(response)
    flow_route.refresh_from_db()
    assert (flow_route.max_concurrency, flow_route.ordered_by_key) == (3, True)
    assert flow_route.on_dead_letter == "skip"

    # then the next claim applies it, and a held delivery's page says why it waits
    a1, a2 = _deliveries(flow_source, 2, key="acme")
    assert execute(a2.id).status == "deferred"
    page = admin_client.get(reverse("admin:events_delivery_change", args=[a2.pk]))
    assert f"held (key): waiting for delivery {a1.id} of key acme" in page.content.decode()


def test_a_slot_woken_into_a_blocked_key_is_passed_on(
    flow_source: Source,
    flow_route: Route,
    sent: list[int],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # given an ordered route capped at 1: acme's second delivery held for the slot
    Route.objects.filter(id=flow_route.id).update(ordered_by_key=True, max_concurrency=1)
    (z1,) = _deliveries(flow_source, 1, key="zeta")
    a1, a2 = _deliveries(flow_source, 2, key="acme")
    (b1,) = _deliveries(flow_source, 1, key="bolt")
    _start(z1)
    assert execute(a2.id).status == "deferred"
    assert execute(b1.id).status == "deferred"
    Delivery.objects.filter(id=a1.id).update(status="running")  # acme's first runs elsewhere
    sent.clear()

    # when the woken acme one finds its key blocked
    Delivery.objects.filter(id=a2.id).update(next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert execute(a2.id).status == "deferred"

    # then the slot goes to the next held delivery of the route
    assert sent == [b1.id]
