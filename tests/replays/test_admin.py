"""Replay in the admin: the page linked from the events list, its dry run, the confirmation
(twice above the threshold), permissions, bad input, the read-only records, and the links
between an event and its copies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from events import tasks
from events.models import Delivery, Event, Replay, ReplayStatus

from .conftest import Jobs

pytestmark = pytest.mark.django_db

NEW = reverse("admin:events_replay_new")
EVENTS = reverse("admin:events_event_changelist")
REPLAYS = reverse("admin:events_replay_changelist")


def confirm_url(replay: Replay) -> str:
    return reverse("admin:events_replay_confirm", args=[replay.pk])


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Stands in for the broker and a worker: each replay the admin sends is run at once by
    the task's own code."""
    sent: list[int] = []

    def send(replay_id: int) -> bool:
        sent.append(replay_id)
        tasks.replay(replay_id)
        return True

    monkeypatch.setattr("events.admin.replays.enqueue", send)
    yield sent


def dry_run(client: Client, **fields: str) -> Any:
    return client.post(NEW, fields)


def test_the_events_list_links_to_the_replay_page_only_for_those_allowed(
    admin_client: Client, client: Client
) -> None:
    assert f'href="{NEW}"' in admin_client.get(EVENTS).content.decode()
    assert admin_client.get(NEW).status_code == 200

    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_event"))
    client.force_login(viewer)
    assert f'href="{NEW}"' not in client.get(EVENTS).content.decode()
    assert client.get(NEW).status_code == 403


def test_a_dry_run_records_a_planned_replay_and_shows_its_figures(
    admin_client: Client, originals: dict[str, Event], enqueued: list[Jobs]
) -> None:
    # when
    response = dry_run(admin_client, source="crm", type="agentrun.*")

    # then
    replay = Replay.objects.get()
    assert response.status_code == 302
    assert response["Location"] == confirm_url(replay)
    assert (replay.status, replay.requested_by, replay.planned_events) == ("planned", "admin", 2)
    page = admin_client.get(confirm_url(replay))
    assert [row for row in page.context["rows"]] == [
        {
            "handler": "test.http_agent",
            "deliveries": "1",
            "per_run": "460 tokens, $0.0040 (average of its last 2 runs)",
            "tokens": "460",
            "cost": "$0.0040",
        },
        {
            "handler": "test.refund_agent",
            "deliveries": "1",
            "per_run": "no recent runs",
            "tokens": "-",
            "cost": "-",
        },
    ]
    html = page.content.decode()
    assert (
        "Estimate: ~460 tokens, ~$0.0040 (not counting test.refund_agent: no recent runs)" in html
    )
    assert Event.objects.filter(replay_of__isnull=False).count() == 0
    assert enqueued == []


def test_confirming_starts_the_replay_and_a_second_click_does_nothing(
    admin_client: Client,
    originals: dict[str, Event],
    enqueued: list[Jobs],
    worker: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    dry_run(admin_client, type="scenario.reservation.cancelled", status="dead_lettered")
    replay = Replay.objects.get()

    # when
    with django_capture_on_commit_callbacks(execute=True):
        first = admin_client.post(confirm_url(replay), follow=True)
    with django_capture_on_commit_callbacks(execute=True):
        second = admin_client.post(confirm_url(replay), follow=True)

    # then
    assert worker == [replay.pk]
    replay.refresh_from_db()
    assert (replay.status, replay.events_done, replay.deliveries_done) == ("done", 1, 2)
    copy = Event.objects.get(replay=replay)
    assert copy.replay_of == originals["second"]
    assert Delivery.objects.filter(event=copy).count() == 2
    assert messages_of(first) == [f"{replay} started: 1 events are being copied by a worker."]
    assert messages_of(second) == [f"{replay} is done already."]
    assert LogEntry.objects.get().change_message == (
        "Started: type scenario.reservation.cancelled, status dead_lettered, "
        f"to {replay.received_to:%Y-%m-%d %H:%M:%S %Z}."
    )


def test_above_the_threshold_the_confirmation_needs_the_checkbox(
    admin_client: Client,
    originals: dict[str, Event],
    enqueued: list[Jobs],
    worker: list[int],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SWITCHYARD_REPLAY_CONFIRM_ABOVE = 3
    dry_run(admin_client, source="crm")
    replay = Replay.objects.get()

    unticked = admin_client.post(confirm_url(replay))
    assert unticked.status_code == 200
    assert "Tick this to replay 4 events." in unticked.content.decode()
    replay.refresh_from_db()
    assert (replay.status, worker) == ("planned", [])

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(confirm_url(replay), {"confirm": "on"})
    replay.refresh_from_db()
    assert (replay.status, replay.events_done, worker) == ("done", 4, [replay.pk])


def test_a_dry_run_of_an_empty_form_chooses_every_event(
    admin_client: Client, originals: dict[str, Event]
) -> None:
    dry_run(admin_client)

    # the four originals and the two events of the agent's past runs
    assert Replay.objects.get().planned_events == 6


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"received_from": "2025-03-02T00:00", "received_to": "2025-03-01T00:00"}, "from must"),
        ({"received_from": "the day before yesterday"}, "Enter a valid date/time."),
        ({"status": "lost"}, "Select a valid choice."),
        ({"source": "nowhere"}, "Select a valid choice."),
        ({"type": "a*b"}, "type must be a type, or a prefix ending in *"),
    ],
)
def test_bad_input_is_a_form_error(
    admin_client: Client, originals: dict[str, Event], fields: dict[str, str], error: str
) -> None:
    response = dry_run(admin_client, **fields)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert Replay.objects.count() == 0


def test_replaying_needs_the_replay_permission(
    client: Client, originals: dict[str, Event], worker: list[int]
) -> None:
    planner = User.objects.create_user("planner", password="pw", is_staff=True)
    planner.user_permissions.add(Permission.objects.get(codename="replay_events"))
    client.force_login(planner)
    dry_run(client, source="crm")
    replay = Replay.objects.get()
    assert replay.requested_by == "planner"

    planner.user_permissions.set([Permission.objects.get(codename="view_replay")])
    client.force_login(User.objects.get(pk=planner.pk))
    assert client.post(confirm_url(replay)).status_code == 403
    assert client.post(NEW, {"source": "crm"}).status_code == 403
    replay.refresh_from_db()
    assert (replay.status, worker) == ("planned", [])


def test_replays_are_read_only_records(
    admin_client: Client, originals: dict[str, Event], enqueued: list[Jobs], worker: list[int]
) -> None:
    dry_run(admin_client, source="crm", type="scenario.*")
    replay = Replay.objects.get()

    listing = admin_client.get(REPLAYS)
    page = admin_client.get(reverse("admin:events_replay_change", args=[replay.pk]))

    assert list(listing.context["cl"].result_list) == [replay]
    html = page.content.decode()
    assert "source crm, type scenario.*" in html
    assert "<td>test.notify</td><td>2</td><td>not an agent</td>" in html
    assert 'name="_save"' not in html
    assert admin_client.get(reverse("admin:events_replay_add")).status_code == 403
    delete = reverse("admin:events_replay_delete", args=[replay.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Replay.objects.filter(status=ReplayStatus.PLANNED).count() == 1


def test_an_event_page_links_its_copies_and_a_copy_its_original_and_replay(
    admin_client: Client,
    originals: dict[str, Event],
    enqueued: list[Jobs],
    worker: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    dry_run(admin_client, type="agentrun.question")
    replay = Replay.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(confirm_url(replay))
    original = originals["question"]
    copy = Event.objects.get(replay_of=original)

    original_page = admin_client.get(reverse("admin:events_event_change", args=[original.pk]))
    copy_page = admin_client.get(reverse("admin:events_event_change", args=[copy.pk]))
    copies_list = admin_client.get(f"{EVENTS}?replay={replay.pk}")

    copy_url = reverse("admin:events_event_change", args=[copy.pk])
    original_url = reverse("admin:events_event_change", args=[original.pk])
    replay_url = reverse("admin:events_replay_change", args=[replay.pk])
    assert f'<a href="{copy_url}">{str(copy.pk)[:8]}</a>' in original_page.content.decode()
    assert (
        f'a copy of <a href="{original_url}">{str(original.pk)[:8]}</a>, made by '
        f'<a href="{replay_url}">{replay}</a>'
    ) in copy_page.content.decode()
    assert list(copies_list.context["cl"].result_list) == [copy]


def test_replay_selected_events_goes_to_the_dry_run_of_those_events(
    admin_client: Client,
    originals: dict[str, Event],
    enqueued: list[Jobs],
    worker: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    ticked = [originals["first"], originals["question"]]

    response = admin_client.post(
        EVENTS,
        {"action": "replay_selected", "_selected_action": [str(e.pk) for e in ticked]},
    )

    replay = Replay.objects.get()
    assert response["Location"] == confirm_url(replay)
    assert (replay.planned_events, replay.planned_deliveries) == (
        2,
        {"test.http_agent": 1, "test.notify": 1, "test.rebook": 1},
    )
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(confirm_url(replay))
    copied = Event.objects.filter(replay=replay).values_list("replay_of_id", flat=True)
    assert sorted(copied) == sorted(e.pk for e in ticked)


def offered_actions(client: Client) -> list[str]:
    form = client.get(EVENTS).context["action_form"]
    return [] if form is None else [name for name, _ in form.fields["action"].choices]


def test_the_replay_action_is_offered_only_to_those_allowed(
    admin_client: Client, client: Client, originals: dict[str, Event]
) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_event"))
    client.force_login(viewer)

    assert "replay_selected" in offered_actions(admin_client)
    assert "replay_selected" not in offered_actions(client)
