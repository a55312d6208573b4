"""Handler state in the admin (events/admin/state.py): listed and found by handler or key,
narrowed by time, and edited as JSON; an edit bumps the version, so a run that read the old
one runs again on the edit, and an edit made on a page a delivery has since written over is
refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F
from django.test import Client
from django.urls import reverse

from events.delivery import execute
from events.models import Delivery, HandlerState, Source
from events.publish import publish
from tests.testapp import state_handlers

from .helpers import T0, form_errors, listed

pytestmark = pytest.mark.django_db

LIST = reverse("admin:events_handlerstate_changelist")


def page(row: HandlerState) -> str:
    return reverse("admin:events_handlerstate_change", args=[row.pk])


def save(client: Client, row: HandlerState, text: str, shown_version: int) -> Any:
    return client.post(page(row), {"data": text, "shown_version": shown_version})


@pytest.fixture
def rows() -> dict[str, HandlerState]:
    return {
        "dana": HandlerState.objects.create(
            handler="support.triage",
            partition_key="dana@northwind.example",
            data={"tickets": [{"id": "48213"}]},
            updated_at=T0,
        ),
        "ravi": HandlerState.objects.create(
            handler="support.triage",
            partition_key="ravi@contoso.example",
            data={"tickets": []},
            updated_at=T0 + timedelta(hours=2),
        ),
        "counter": HandlerState.objects.create(
            handler="test.state.count", partition_key="", data={"count": 3}, version=3
        ),
    }


@pytest.fixture(autouse=True)
def _no_interleaving() -> Iterator[None]:
    yield
    state_handlers.BETWEEN_READ_AND_WRITE.clear()


def test_the_list_finds_state_by_handler_and_by_key(
    admin_client: Client, rows: dict[str, HandlerState]
) -> None:
    assert listed(admin_client, LIST) == [rows["counter"], rows["ravi"], rows["dana"]]
    assert listed(admin_client, f"{LIST}?q=northwind") == [rows["dana"]]
    assert listed(admin_client, f"{LIST}?q=test.state") == [rows["counter"]]
    assert listed(admin_client, f"{LIST}?handler=support.triage") == [rows["ravi"], rows["dana"]]


def test_the_list_narrows_to_a_time_range(
    admin_client: Client, rows: dict[str, HandlerState]
) -> None:
    since = (T0 + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    until = (T0 + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")

    assert listed(admin_client, f"{LIST}?updated_at__from={since}&updated_at__to={until}") == [
        rows["ravi"]
    ]
    assert listed(admin_client, f"{LIST}?updated_at__last=1h") == [rows["counter"]]


def test_the_list_shows_each_documents_size_and_who_wrote_it_last(
    admin_client: Client, rows: dict[str, HandlerState]
) -> None:
    HandlerState.objects.filter(pk=rows["ravi"].pk).update(edited_by="ops")

    html = admin_client.get(LIST).content.decode()

    assert '<td class="field-size">11 bytes</td>' in html  # {"count":3}
    assert '<td class="field-size">14 bytes</td>' in html  # {"tickets":[]}
    assert '<td class="field-updated_by">ops (admin)</td>' in html
    assert '<span class="quiet">(no partition key)</span>' in html


def test_an_edit_is_saved_with_the_next_version_and_who_made_it(
    admin_client: Client, rows: dict[str, HandlerState]
) -> None:
    row = rows["counter"]
    shown = admin_client.get(page(row)).content.decode()
    assert '<input type="hidden" name="shown_version" value="3"' in shown
    assert "{\n  &quot;count&quot;: 3\n}</textarea>" in shown

    response = save(admin_client, row, '{"count": 0, "note": "reset by ops"}', shown_version=3)

    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.data, row.version, row.edited_by) == (
        {"count": 0, "note": "reset by ops"},
        4,
        "admin",
    )
    assert row.updated_by_delivery_id is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{not json", "Enter a valid JSON."),
        ("[1, 2]", 'State must be a JSON object, such as {"count": 1}.'),
        (
            json.dumps({"blob": "x" * 100}),
            "This state is 111 bytes, over the limit of 100 (SWITCHYARD_STATE_MAX_BYTES).",
        ),
    ],
)
def test_an_edit_that_is_not_a_json_object_within_the_limit_is_refused(
    admin_client: Client, rows: dict[str, HandlerState], settings: Any, text: str, error: str
) -> None:
    settings.SWITCHYARD_STATE_MAX_BYTES = 100
    row = rows["counter"]

    response = save(admin_client, row, text, shown_version=3)

    assert form_errors(response) == {"data": [error]}
    row.refresh_from_db()
    assert (row.data, row.version) == ({"count": 3}, 3)


def test_an_edit_on_a_page_a_delivery_has_since_written_over_is_refused(
    admin_client: Client, rows: dict[str, HandlerState]
) -> None:
    row = rows["counter"]
    # a delivery writes version 4 after the operator opened the page at version 3
    HandlerState.objects.filter(pk=row.pk).update(data={"count": 4}, version=F("version") + 1)

    response = save(admin_client, row, '{"count": 0}', shown_version=3)

    assert form_errors(response) == {
        "__all__": [
            "This state changed since the page was shown (version 3, now 4): a delivery or "
            "another operator wrote it. Reload the page and make the edit again on the current "
            "state."
        ]
    }
    row.refresh_from_db()
    assert (row.data, row.version) == ({"count": 4}, 4)


def test_a_run_that_read_the_state_before_an_edit_runs_again_on_the_edit(
    admin_client: Client, rows: dict[str, HandlerState], routes: None
) -> None:
    # given the counter at 3, and an operator who saves {"count": 50} while a run works
    row = rows["counter"]
    state_handlers.BETWEEN_READ_AND_WRITE.append(
        lambda: save(admin_client, row, '{"count": 50}', shown_version=3)
    )
    source = Source.objects.create(slug="memory", kind="api")
    event = publish(source=source, type="test.state.count", payload={}).event
    delivery = Delivery.objects.get(event=event)

    # when
    execute(delivery.id)

    # then the run that read 3 did not write 4 over the edit: the handler ran again on 50
    delivery.refresh_from_db()
    assert (delivery.status, delivery.outcome) == ("succeeded", {"count": 51})
    row.refresh_from_db()
    assert (row.data, row.version, row.edited_by) == ({"count": 51}, 5, "")
    assert row.updated_by_delivery_id == delivery.id


def test_state_can_be_neither_added_nor_deleted_in_the_admin(
    admin_client: Client, rows: dict[str, HandlerState]
) -> None:
    row = rows["counter"]

    assert admin_client.get(reverse("admin:events_handlerstate_add")).status_code == 403
    assert (
        admin_client.get(reverse("admin:events_handlerstate_delete", args=[row.pk])).status_code
        == 403
    )
    assert HandlerState.objects.filter(pk=row.pk).exists()
