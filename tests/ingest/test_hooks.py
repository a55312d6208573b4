"""POST /hooks/<slug> for hmac sources: signatures, sources, bodies, fan-out.

Size limits are in test_hooks_size.py.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from events.models import Delivery, Event, Route, Source
from events.webhooks.hmac import sign

from .conftest import (
    BAD_BODIES,
    CANCELLED,
    MISMATCH,
    assert_rejected,
    envelope,
    hook_body,
    post_hook,
    stored,
)

pytestmark = pytest.mark.django_db


# --- Signature --------------------------------------------------------------------------------


def test_missing_signature_header_is_401(client: Client, hmac_source: Source) -> None:
    before = stored()
    response = client.post("/hooks/shop", data=hook_body(), content_type="application/json")
    assert_rejected(response, 401, "missing X-Switchyard-Signature header")
    assert stored() == before


def test_empty_signature_header_is_401(client: Client, hmac_source: Source) -> None:
    before = stored()
    response = post_hook(client, hook_body(), signature="")
    assert_rejected(response, 401, "missing X-Switchyard-Signature header")
    assert stored() == before


@pytest.mark.parametrize(
    "make_signature",
    [
        pytest.param(lambda body: sign("new-secret", body + b" "), id="signature-of-other-body"),
        pytest.param(lambda body: sign("wrong-secret", body), id="wrong-secret"),
        pytest.param(lambda body: sign("new-secret", body)[:-2], id="truncated"),
        pytest.param(lambda body: "sha256=" + "z" * 64, id="not-hex"),
        pytest.param(lambda body: "sha256=" + "é" * 64, id="not-ascii"),
        pytest.param(lambda body: "sha1=" + sign("new-secret", body)[7:], id="other-prefix"),
        pytest.param(
            lambda body: "sha256=" + hmac.new(b"new-secret", body, hashlib.sha1).hexdigest(),
            id="sha1-digest",
        ),
    ],
)
def test_bad_signature_is_401(
    client: Client, hmac_source: Source, make_signature: Callable[[bytes], str]
) -> None:
    # given
    before = stored()
    body = hook_body()
    # when
    response = post_hook(client, body, signature=make_signature(body))
    # then
    assert_rejected(response, 401, MISMATCH)
    assert stored() == before


def test_a_third_older_secret_is_no_longer_accepted(client: Client, db: None) -> None:
    # given a source mid-rotation that still lists a retired secret
    Source.objects.create(slug="shop", kind="hmac", secrets=["new", "old", "retired"])
    before = stored()
    # when / then
    assert_rejected(post_hook(client, hook_body(), secret="retired"), 401, MISMATCH)
    assert stored() == before
    assert post_hook(client, hook_body(), secret="old").status_code == 202


def test_source_without_secrets_refuses_everything(client: Client, db: None) -> None:
    Source.objects.create(slug="shop", kind="hmac", secrets=[])
    before = stored()
    response = post_hook(client, hook_body(), signature="sha256=" + "0" * 64)
    assert_rejected(response, 401, "this source has no secret configured")
    assert stored() == before


# --- Source -----------------------------------------------------------------------------------


def test_unknown_slug_is_404(client: Client, hmac_source: Source) -> None:
    before = stored()
    response = post_hook(client, hook_body(), slug="nope")
    assert_rejected(response, 404, "no webhook source 'nope'")
    assert stored() == before


def test_disabled_source_is_404(client: Client, hmac_source: Source) -> None:
    Source.objects.filter(id=hmac_source.id).update(enabled=False)
    before = stored()
    response = post_hook(client, hook_body())
    assert_rejected(response, 404, "no webhook source 'shop'")
    assert stored() == before


@pytest.mark.parametrize("kind", ["api", "internal", "no-such-kind"])
def test_source_that_is_not_a_webhook_kind_is_404(client: Client, db: None, kind: str) -> None:
    Source.objects.create(slug="inside", kind=kind, secrets=["new-secret"])
    before = stored()
    response = post_hook(client, hook_body(), slug="inside")
    assert_rejected(response, 404, "no webhook source 'inside'")
    assert stored() == before


def test_slug_with_a_nul_character_is_404_not_500(client: Client, hmac_source: Source) -> None:
    before = stored()
    response = post_hook(client, hook_body(), slug="%00")
    assert_rejected(response, 404, "no webhook source '\\x00'")
    assert stored() == before


# --- Body -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "error"), BAD_BODIES)
def test_bad_body_is_400_and_stores_nothing(
    client: Client, hmac_source: Source, routes: None, body: bytes, error: str | re.Pattern[str]
) -> None:
    before = stored()
    response = post_hook(client, body)
    assert_rejected(response, 400, error)
    assert stored() == before


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_wrong_content_type_is_415(client: Client, hmac_source: Source, content_type: str) -> None:
    before = stored()
    response = post_hook(client, hook_body(), content_type=content_type)
    assert_rejected(response, 415, "content type must be application/json")
    assert stored() == before


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_405(client: Client, hmac_source: Source, method: str) -> None:
    before = stored()
    response = getattr(client, method)("/hooks/shop")
    assert_rejected(response, 405, "use POST")
    assert response["Allow"] == "POST"
    assert stored() == before


# --- Accepted ---------------------------------------------------------------------------------


def test_signed_event_is_accepted_with_202_and_stored(
    client: Client, hmac_source: Source, routes: None, django_capture_on_commit_callbacks: Any
) -> None:
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_hook(client, hook_body("evt_1", guest="Ann"))
    # then
    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    event = Event.objects.get()
    assert response.json() == {"id": str(event.id), "status": "received", "deliveries": 2}
    assert (event.source, event.type, event.external_id) == (hmac_source, CANCELLED, "evt_1")
    assert (event.partition_key, event.payload, event.status) == (
        "r1",
        {"guest": "Ann"},
        "received",
    )
    assert sorted(Delivery.objects.values_list("handler", "status")) == [
        ("test.notify", "pending"),
        ("test.rebook", "pending"),
    ]
    assert len(callbacks) == 1  # one enqueue, after commit


@pytest.mark.parametrize(
    "make_signature",
    [
        pytest.param(lambda body: sign("new-secret", body), id="new-secret"),
        pytest.param(lambda body: sign("old-secret", body), id="old-secret"),
        pytest.param(lambda body: sign("new-secret", body)[7:], id="no-prefix"),
        pytest.param(lambda body: sign("new-secret", body).upper(), id="upper-case"),
        pytest.param(lambda body: " " + sign("old-secret", body) + " ", id="padded"),
    ],
)
def test_signature_forms_accepted(
    client: Client, hmac_source: Source, make_signature: Callable[[bytes], str]
) -> None:
    body = hook_body()
    response = post_hook(client, body, signature=make_signature(body))
    assert response.status_code == 202
    assert Event.objects.count() == 1


def test_charset_parameter_on_the_content_type_is_accepted(
    client: Client, hmac_source: Source
) -> None:
    response = post_hook(client, hook_body(), content_type="application/json; charset=utf-8")
    assert response.status_code == 202


def test_valid_json_edge_values_are_stored_faithfully(client: Client, hmac_source: Source) -> None:
    # given the awkward but valid: escaped astral characters, raw UTF-8, a 4000-digit integer,
    # duplicate keys (the last wins) and a payload nested 60 levels deep
    big = "9" * 4000
    body = (
        b'{"type": "a.b", "id": "\xc3\xa9v\xc3\xa9nement", "payload": {"smile": "\\ud83d\\ude00",'
        b' "caf\xc3\xa9": "cr\xc3\xa8me", "big": ' + big.encode() + b', "dup": 1, "dup": 2,'
        b' "deep": ' + b'{"a": ' * 60 + b"{}" + b"}" * 60 + b"}}"
    )
    # when
    response = post_hook(client, body)
    # then
    assert response.status_code == 202
    event = Event.objects.get()
    assert event.external_id == "événement"
    payload = event.payload
    assert (payload["smile"], payload["café"], payload["dup"]) == ("😀", "crème", 2)
    assert payload["big"] == int(big)
    deep = payload["deep"]
    for _ in range(60):
        deep = deep["a"]
    assert deep == {}


def test_duplicate_answers_200_with_the_original_id_and_does_no_new_work(
    client: Client, hmac_source: Source, routes: None, django_capture_on_commit_callbacks: Any
) -> None:
    # given an accepted event
    first = post_hook(client, hook_body("evt_1", guest="Ann"))
    assert first.status_code == 202
    deliveries = list(Delivery.objects.order_by("id").values_list("id", "handler", "status"))
    # when the sender retries it (with the other secret and a changed payload)
    with django_capture_on_commit_callbacks() as callbacks:
        again = post_hook(client, hook_body("evt_1", guest="Bo"), secret="old-secret")
    # then
    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert Event.objects.get().payload == {"guest": "Ann"}
    assert list(Delivery.objects.order_by("id").values_list("id", "handler", "status")) == (
        deliveries
    )
    assert callbacks == []


def test_same_external_id_from_another_source_is_a_new_event(
    client: Client, hmac_source: Source
) -> None:
    Source.objects.create(slug="other", kind="hmac", secrets=["other-secret"])
    first = post_hook(client, hook_body("evt_1"))
    second = post_hook(client, hook_body("evt_1"), slug="other", secret="other-secret")
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] != second.json()["id"]
    assert Event.objects.count() == 2


def test_with_the_dedupe_window_off_requests_without_an_id_are_never_duplicates(
    client: Client, hmac_source: Source
) -> None:
    hmac_source.settings = {"dedupe_window_seconds": 0}
    hmac_source.save()
    body = envelope(type=CANCELLED, payload={})
    answers = [post_hook(client, body).status_code for _ in range(2)]
    assert answers == [202, 202]
    assert Event.objects.count() == 2
    assert all(len(e) == 32 for e in Event.objects.values_list("external_id", flat=True))


def test_event_no_route_matches_is_stored_as_ignored(
    client: Client, hmac_source: Source, routes: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_hook(client, envelope(type="nobody.listens", id="e1", payload={}))
    assert response.status_code == 202
    event = Event.objects.get()
    assert response.json() == {"id": str(event.id), "status": "ignored", "deliveries": 0}
    assert event.status == "ignored"
    assert Delivery.objects.count() == 0
    assert callbacks == []


def test_fan_out_makes_one_delivery_per_matching_route(client: Client, hmac_source: Source) -> None:
    # given routes that match by glob, by glob and filter, and some that do not match
    def route(name: str, pattern: str, handler: str, **fields: Any) -> None:
        Route.objects.create(name=name, event_type=pattern, handler=handler, **fields)

    route("a", "order.*", "h.glob")
    route("b", "order.created", "h.filtered", payload_filter={"order.total": [10, 20]})
    route("c", "order.*", "h.wrong-filter", payload_filter={"order.currency": "USD"})
    route("d", "order.*", "h.missing-path", payload_filter={"customer.id": 1})
    route("e", "invoice.*", "h.other-type")
    route("f", "order.*", "h.disabled", enabled=False)
    route("g", "order.created", "h.glob")  # names a handler route "a" already covers
    body = envelope(
        type="order.created", id="o1", payload={"order": {"total": 20, "currency": "EUR"}}
    )
    # when
    response = post_hook(client, body)
    # then
    assert response.status_code == 202
    assert response.json()["deliveries"] == 2
    assert sorted(Delivery.objects.values_list("handler", "route__name")) == [
        ("h.filtered", "b"),
        ("h.glob", "a"),
    ]
