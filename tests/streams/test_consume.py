"""One consumer against a real stream: entries become events and are acknowledged, duplicates
dedupe, bad entries are dead-lettered without blocking the ones behind them."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from io import StringIO

import pytest
import redis
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from events.delivery import execute
from events.models import DeadLetter, Delivery, DeliveryStatus, Event, EventStatus, Source
from events.stream_entries import StreamOptions, store_rejected
from tests.conftest import wait_until

from .conftest import GROUP, Consumer, add, events, wait_consumed

pytestmark = pytest.mark.django_db(transaction=True)

TYPE_ERROR = (
    "field 'type': type must be 1-200 characters of letters, digits and . _ : / - "
    "(starting with a letter or digit)"
)


def test_entries_become_events_are_acknowledged_and_duplicates_are_stored_once(
    consumers: Callable[..., Consumer], r: redis.Redis, stream: str, stream_source: Source
) -> None:
    # given
    consumer = consumers("--progress-every", "1")
    assert consumer.output().startswith(
        f"consuming {stream} into source orders: group g (created at $), consumer "
    )

    # when: an entry with a JSON payload field, one with plain fields, and two copies of
    # entries whose id was already seen
    add(r, stream, {"type": "shop.order.created", "id": "o-1", "payload": '{"total": 12.5}'})
    plain_id = add(r, stream, {"type": "shop.order.shipped", "carrier": "post", "parcel": "p-9"})
    add(r, stream, {"type": "shop.order.created", "id": "o-1", "payload": '{"total": 99}'})
    last_id = add(r, stream, {"type": "shop.order.created", "id": "o-1", "payload": "{}"})

    # then: all four acknowledged, two events stored; the first copy of an id wins
    wait_consumed(r, stream, last_id)
    assert {k: (e.type, e.payload) for k, e in events(stream_source).items()} == {
        "o-1": ("shop.order.created", {"total": 12.5}),
        f"{stream}/{plain_id}": (
            "shop.order.shipped",
            {"carrier": "post", "parcel": "p-9"},
        ),
    }
    # periodic progress, then a summary at exit
    progress = "published 2, duplicates 2, dead-lettered 0, failed (left pending) 0"
    wait_until(lambda: progress in consumer.output(), what="a progress line")
    assert consumer.terminate(signal.SIGINT) == 0
    assert consumer.summary() == {
        "published": 2, "duplicates": 2, "dead_lettered": 0, "failed": 0, "claimed": 0
    }  # fmt: skip


def test_malformed_entries_are_dead_lettered_and_later_entries_still_flow(
    consumers: Callable[..., Consumer], r: redis.Redis, stream: str, stream_source: Source
) -> None:
    # given
    consumer = consumers()
    bad: dict[str, dict[str, str | bytes]] = {
        "bad-json": {"type": "shop.order.created", "payload": "{nope"},
        "no-type": {"payload": "{}"},
        "bad-type": {"type": "bad type!"},
        "array": {"type": "shop.order.created", "payload": "[1, 2]"},
        "not-utf8": {"type": b"shop.\xff", "note": "x"},
        "nul": {"type": "shop.order.created", "note": "a\x00b"},
        "too-big": {"type": "shop.order.created", "note": "x" * (1024 * 1024 + 1)},
    }
    reasons = {
        "bad-json": "field 'payload' is not valid JSON: Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1)",
        "no-type": "no 'type' field",
        "bad-type": TYPE_ERROR,
        "array": "field 'payload' is not a JSON object",
        "not-utf8": "field 'type' is not valid UTF-8",
        "nul": "payload contains a NUL character (\\u0000)",
        "too-big": "entry is 1048603 bytes; the limit is 1048576 (SWITCHYARD_MAX_BODY_BYTES)",
    }
    ids = {name: add(r, stream, fields) for name, fields in bad.items()}

    # when: a good entry comes after them
    last_id = add(r, stream, {"type": "shop.order.created", "id": "o-after", "payload": "{}"})

    # then
    wait_consumed(r, stream, last_id)
    assert events(stream_source, "shop.order.created").keys() == {"o-after"}
    rejected = events(stream_source, "stream.rejected")
    assert rejected.keys() == {f"{stream}/{entry_id}" for entry_id in ids.values()}
    for name, entry_id in ids.items():
        event = rejected[f"{stream}/{entry_id}"]
        assert event.payload["reason"] == reasons[name]
        assert (event.payload["stream"], event.payload["group"]) == (stream, GROUP)
        assert event.payload["entry_id"] == entry_id
        assert event.status == EventStatus.DEAD_LETTERED
        [delivery] = event.deliveries.all()
        assert (delivery.handler, delivery.status, delivery.error_class, delivery.last_error) == (
            "stream.rejected",
            DeliveryStatus.DEAD_LETTERED,
            "MalformedEntry",
            reasons[name],
        )
    # the raw fields are kept, made storable
    not_utf8 = rejected[f"{stream}/{ids['not-utf8']}"].payload["fields"]
    assert not_utf8 == {"type": "shop.\\xff", "note": "x"}
    assert rejected[f"{stream}/{ids['nul']}"].payload["fields"]["note"] == "a\\x00b"
    assert DeadLetter.objects.filter(event__source=stream_source).count() == len(bad)
    assert consumer.terminate() == 0
    assert consumer.summary()["dead_lettered"] == len(bad)


@pytest.fixture
def refusing_trigger(transactional_db: None) -> Iterator[None]:
    """A real database error for one entry: PostgreSQL refuses events whose payload has a
    top-level "explode" key."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_refuse_explode() RETURNS trigger AS $$
            BEGIN
                IF NEW.payload ? 'explode' THEN
                    RAISE EXCEPTION 'refused by the test trigger';
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_refuse_explode BEFORE INSERT ON events_event
                FOR EACH ROW EXECUTE FUNCTION test_refuse_explode();
            """
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER test_refuse_explode ON events_event; DROP FUNCTION test_refuse_explode();"
        )


def test_entries_that_keep_failing_are_dead_lettered_after_max_deliveries(
    refusing_trigger: None,
    consumers: Callable[..., Consumer],
    r: redis.Redis,
    stream: str,
    stream_source: Source,
) -> None:
    # given: an entry some consumer was handed three times and never acknowledged (it kept
    # dying on it)
    r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    crashy_id = add(r, stream, {"type": "shop.order.created", "id": "o-7"})
    r.xreadgroup(GROUP, "crashy", {stream: ">"})
    r.xreadgroup(GROUP, "crashy", {stream: "0"})
    r.xreadgroup(GROUP, "crashy", {stream: "0"})
    consumer = consumers("--max-deliveries", "3", "--claim-idle", "200")

    # when: an entry the database refuses, and a good one behind it
    boom_fields: dict[str, str | bytes] = {
        "type": "shop.order.created",
        "id": "o-x",
        "payload": '{"explode": 1}',
    }
    boom_id = add(r, stream, boom_fields)
    last_id = add(r, stream, {"type": "shop.order.created", "id": "o-ok", "payload": "{}"})

    # then: the good one is stored; the crashy one is claimed as its fourth delivery and
    # dead-lettered unparsed; the refused one is left pending, tried three times in all, then
    # dead-lettered with the database's error
    wait_consumed(r, stream, last_id)
    assert events(stream_source, "shop.order.created").keys() == {"o-ok"}
    rejected = events(stream_source, "stream.rejected")
    assert {k: e.payload["reason"] for k, e in rejected.items()} == {
        f"{stream}/{crashy_id}": (
            "delivered 4 times without being stored (--max-deliveries 3); last error: "
            "unknown (a consumer stopped while handling it)"
        ),
        f"{stream}/{boom_id}": (
            "delivered 4 times without being stored (--max-deliveries 3); last error: "
            "ProgrammingError: refused by the test trigger"
        ),
    }
    assert rejected[f"{stream}/{boom_id}"].payload["fields"] == boom_fields
    assert {e.deliveries.get().error_class for e in rejected.values()} == {"TooManyDeliveries"}
    assert consumer.terminate() == 0
    # claimed: the crashy entry once, the refused one on its 2nd, 3rd and 4th delivery
    assert consumer.summary() == {
        "published": 1, "duplicates": 0, "dead_lettered": 2, "failed": 3, "claimed": 4
    }  # fmt: skip


@pytest.mark.django_db
def test_a_rejected_entry_is_a_dead_letter_whose_requeue_fails_again_with_its_reason(
    admin_client: Client,
) -> None:
    # given
    source = Source.objects.create(slug="orders", kind="stream")
    options = StreamOptions(stream="orders", group=GROUP, consumer="c")
    fields = {b"payload": b"{}"}
    assert store_rejected(source, options, "1-0", fields, "no 'type' field", "MalformedEntry")
    # the same entry again (a redelivery) stores nothing more
    assert not store_rejected(source, options, "1-0", fields, "again", "MalformedEntry")
    delivery = Delivery.objects.get(handler="stream.rejected")

    # the admin's dead letters list it with the reason
    dead_letters = reverse("admin:events_deadletter_changelist")
    page = admin_client.get(dead_letters).content.decode()
    assert "stream.rejected" in page
    assert "no &#x27;type&#x27; field" in page

    # when: an operator requeues it and a worker runs it
    requeue = reverse("admin:events_deadletter_requeue", args=[delivery.pk])
    assert admin_client.post(requeue).status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    execute(delivery.id)

    # then: dead again, honestly, with the same reason
    delivery.refresh_from_db()
    assert (delivery.status, delivery.total_attempts, delivery.error_class) == (
        DeliveryStatus.DEAD_LETTERED,
        1,
        "handlers.errors.PermanentError",
    )
    assert delivery.last_error == "no 'type' field (add a corrected entry to the stream instead)"
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setup", "argv", "error"),
    [
        (None, ["--source", "nope"], "source 'nope' does not exist"),
        ("hmac", ["--source", "orders"], "source 'orders' is a hmac source"),
        ("disabled", ["--source", "orders"], "source 'orders' is disabled"),
        ("stream", ["--source", "orders", "--id-field", "type"], "must differ"),
        ("stream", ["--source", "orders", "--batch", "0"], "0 is not between 1 and 1000"),
        ("stream", ["--source", "orders", "--redis-url", "redis://127.0.0.1:1/0"], "redis at"),
    ],
)
def test_bad_arguments_are_a_command_error(setup: str | None, argv: list[str], error: str) -> None:
    if setup is not None:
        Source.objects.create(
            slug="orders", kind="hmac" if setup == "hmac" else "stream", enabled=setup != "disabled"
        )
    with pytest.raises(CommandError, match=error):
        call_command("consume_stream", "s", "--group", GROUP, *argv)
    assert Event.objects.count() == 0


@pytest.mark.django_db
def test_create_source_makes_a_stream_source_and_says_how_to_consume_it() -> None:
    out = StringIO()
    call_command("create_source", "--slug", "orders", "--kind", "stream", stdout=out, stderr=out)
    assert Source.objects.get(slug="orders").kind == "stream"
    assert out.getvalue().splitlines()[-1] == (
        "manage.py consume_stream STREAM --group GROUP --source orders"
    )
