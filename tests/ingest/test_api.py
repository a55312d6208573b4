"""POST /api/events and GET /api/events/<id>, with bearer tokens."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from events.models import ApiToken, Delivery, Event, Source
from events.tokens import create_token

from .conftest import BAD_BODIES, CANCELLED, Response, assert_rejected, envelope, stored

pytestmark = pytest.mark.django_db

BAD_TOKEN = "missing or invalid bearer token"


def post_api(
    client: Client,
    body: bytes,
    *,
    token: str | None,
    content_type: str = "application/json",
    **extra: Any,
) -> Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(
        "/api/events", data=body, content_type=content_type, headers=headers, **extra
    )


def get_event(client: Client, event_id: str, token: str | None) -> Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get(f"/api/events/{event_id}", headers=headers)


def valid_body(external_id: str = "evt_1", **fields: Any) -> bytes:
    return envelope(
        type=CANCELLED, id=external_id, partition_key="r1", payload={"guest": "Ann"}, **fields
    )


# --- Authentication ---------------------------------------------------------------------------


def mangle_secret(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param("Bearer ", id="bearer-blank"),
        pytest.param("Bearer not-a-token", id="not-a-token"),
        pytest.param("Bearer sy_deadbeef", id="no-secret-part"),
        pytest.param("Bearer sy_deadbeef_" + "x" * 43, id="unknown-prefix"),
        pytest.param("Bearer sy_\x00_x", id="nul-in-prefix"),
        pytest.param("Bearer sy_ünï_x", id="non-ascii"),
        pytest.param("{wrong_secret}", id="wrong-secret"),
        pytest.param("Token {token}", id="wrong-scheme"),
        pytest.param("{token}", id="no-scheme"),
    ],
)
def test_bad_or_missing_token_is_401(
    client: Client, api_token: str, routes: None, authorization: str | None
) -> None:
    # given
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(
            token=api_token, wrong_secret="Bearer " + mangle_secret(api_token)
        )
    before = stored()
    # when
    posted = client.post(
        "/api/events", data=valid_body(), content_type="application/json", headers=headers
    )
    fetched = client.get(f"/api/events/{uuid.uuid4()}", headers=headers)
    # then
    assert_rejected(posted, 401, BAD_TOKEN)
    assert_rejected(fetched, 401, BAD_TOKEN)
    assert stored() == before


def test_revoked_token_is_401(client: Client, api_token: str) -> None:
    assert post_api(client, valid_body("evt_0"), token=api_token).status_code == 202
    ApiToken.objects.update(revoked_at=timezone.now())
    before = stored()
    assert_rejected(post_api(client, valid_body(), token=api_token), 401, BAD_TOKEN)
    assert_rejected(get_event(client, str(uuid.uuid4()), api_token), 401, BAD_TOKEN)
    assert stored() == before


def test_a_token_records_when_it_was_last_used(client: Client, api_token: str) -> None:
    assert ApiToken.objects.get().last_used_at is None
    post_api(client, valid_body(), token=api_token)
    last_used = ApiToken.objects.get().last_used_at
    assert last_used is not None
    assert timezone.now() - last_used < timedelta(seconds=10)


# --- Rejected bodies --------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "error"), BAD_BODIES)
def test_bad_body_is_400_and_stores_nothing(
    client: Client, api_token: str, routes: None, body: bytes, error: str | re.Pattern[str]
) -> None:
    before = stored()
    response = post_api(client, body, token=api_token)
    assert_rejected(response, 400, error)
    assert stored() == before  # not even the "api" source is left behind


@pytest.mark.parametrize(
    ("source", "error"),
    [
        pytest.param("nope", "source 'nope' does not exist or is disabled", id="unknown"),
        pytest.param("off", "source 'off' does not exist or is disabled", id="disabled"),
        pytest.param(7, "source must be a string", id="number"),
        pytest.param(["shop"], "source must be a string", id="list"),
    ],
)
def test_bad_named_source_is_400(
    client: Client, api_token: str, db: None, source: Any, error: str
) -> None:
    Source.objects.create(slug="off", kind="api", enabled=False)
    before = stored()
    response = post_api(client, valid_body(source=source), token=api_token)
    assert_rejected(response, 400, error)
    assert stored() == before


def test_disabled_api_source_is_400(client: Client, api_token: str, db: None) -> None:
    Source.objects.create(slug="api", kind="api", enabled=False)
    before = stored()
    response = post_api(client, valid_body(), token=api_token)
    assert_rejected(response, 400, "the api source is disabled")
    assert stored() == before


def test_body_over_the_limit_is_413(client: Client, api_token: str, settings: Any) -> None:
    settings.SWITCHYARD_MAX_BODY_BYTES = 100
    body = envelope(type="a.b", payload={"x": "y" * 100})
    before = stored()
    response = post_api(client, body, token=api_token)
    assert_rejected(response, 413, "body is larger than the limit of 100 bytes")
    assert stored() == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(client: Client, api_token: str, content_type: str) -> None:
    before = stored()
    response = post_api(client, valid_body(), token=api_token, content_type=content_type)
    assert_rejected(response, 415, "content type must be application/json")
    assert stored() == before


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_on_the_publish_endpoint_are_405(
    client: Client, api_token: str, method: str
) -> None:
    response = getattr(client, method)(
        "/api/events", headers={"Authorization": f"Bearer {api_token}"}
    )
    assert_rejected(response, 405, "use POST")
    assert response["Allow"] == "POST"


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_on_the_event_endpoint_are_405_even_with_csrf_checks(
    client: Client, api_token: str, method: str
) -> None:
    response = getattr(client, method)(
        f"/api/events/{uuid.uuid4()}", headers={"Authorization": f"Bearer {api_token}"}
    )
    assert_rejected(response, 405, "use GET")
    assert response["Allow"] == "GET"


@pytest.mark.parametrize(
    "event_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid", "123", "%00", "é"]
)
def test_get_of_an_unknown_or_malformed_event_id_is_404(
    client: Client, api_token: str, event_id: str
) -> None:
    assert_rejected(get_event(client, event_id, api_token), 404, "no such event")


# --- Accepted ---------------------------------------------------------------------------------


def test_publish_is_accepted_with_202_under_the_api_source(
    client: Client, api_token: str, routes: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_api(client, valid_body(schema_version=2), token=api_token)
    assert response.status_code == 202
    event = Event.objects.select_related("source").get()
    assert response.json() == {"id": str(event.id), "status": "received", "deliveries": 2}
    assert (event.source.slug, event.source.kind) == ("api", "api")
    assert (event.type, event.external_id, event.partition_key, event.schema_version) == (
        CANCELLED,
        "evt_1",
        "r1",
        2,
    )
    assert Delivery.objects.count() == 2
    assert len(callbacks) == 1


def test_publish_into_a_named_api_source(client: Client, api_token: str) -> None:
    crm = Source.objects.create(slug="crm", kind="api")
    response = post_api(client, valid_body(source="crm"), token=api_token)
    assert response.status_code == 202
    assert Event.objects.get().source == crm


def test_a_token_cannot_publish_into_a_webhook_source(
    client: Client, api_token: str, hmac_source: Source
) -> None:
    response = post_api(client, valid_body(source="shop"), token=api_token)
    assert response.status_code == 400
    assert response.json() == {
        "error": "source 'shop' is a hmac source; only api sources take API events"
    }
    assert Event.objects.count() == 0


def test_duplicate_publish_answers_200_with_the_original_id(
    client: Client, api_token: str, routes: None, django_capture_on_commit_callbacks: Any
) -> None:
    first = post_api(client, valid_body(), token=api_token)
    with django_capture_on_commit_callbacks() as callbacks:
        again = post_api(client, valid_body(), token=api_token)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert (Event.objects.count(), Delivery.objects.count()) == (1, 2)
    assert callbacks == []


def test_ignored_event_through_the_api(client: Client, api_token: str, routes: None) -> None:
    response = post_api(client, envelope(type="nobody.listens", payload={}), token=api_token)
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert response.json()["deliveries"] == 0
    assert Event.objects.get().status == "ignored"


def test_get_event_returns_the_event_and_each_delivery(
    client: Client, api_token: str, routes: None
) -> None:
    # given an event whose two deliveries ended differently
    event_id = post_api(client, valid_body(), token=api_token).json()["id"]
    retry_at = timezone.now() + timedelta(seconds=30)
    Delivery.objects.filter(handler="test.rebook").update(
        status="succeeded", attempts=1, total_attempts=1, outcome={"rebooked": "r1"}
    )
    Delivery.objects.filter(handler="test.notify").update(
        status="retrying",
        attempts=2,
        total_attempts=2,
        next_attempt_at=retry_at,
        error_class="handlers.errors.TransientError",
        last_error="upstream unavailable",
    )
    Event.objects.filter(id=event_id).update(status="failed")
    event = Event.objects.get(id=event_id)
    # when
    response = get_event(client, event_id, api_token)
    # then
    assert response.status_code == 200
    assert response.json() == {
        "id": event_id,
        "source": "api",
        "type": CANCELLED,
        "external_id": "evt_1",
        "partition_key": "r1",
        "schema_version": 1,
        "status": "failed",
        "received_at": event.received_at.isoformat(),
        "payload": {"guest": "Ann"},
        "deliveries": [
            {
                "handler": "test.notify",
                "status": "retrying",
                "attempts": 2,
                "next_attempt_at": retry_at.isoformat(),
                "error_class": "handlers.errors.TransientError",
                "last_error": "upstream unavailable",
            },
            {
                "handler": "test.rebook",
                "status": "succeeded",
                "attempts": 1,
                "next_attempt_at": None,
                "outcome": {"rebooked": "r1"},
            },
        ],
    }


def test_get_event_of_a_fresh_event_shows_pending_deliveries(
    client: Client, api_token: str, routes: None
) -> None:
    event_id = post_api(client, valid_body(), token=api_token).json()["id"]
    response = get_event(client, event_id.upper(), api_token)
    assert response.status_code == 200
    assert response.json()["status"] == "received"
    assert response.json()["deliveries"] == [
        {"handler": "test.notify", "status": "pending", "attempts": 0, "next_attempt_at": None},
        {"handler": "test.rebook", "status": "pending", "attempts": 0, "next_attempt_at": None},
    ]


def test_a_second_token_works_independently(client: Client, api_token: str) -> None:
    _, other = create_token("other")
    assert post_api(client, valid_body("a"), token=api_token).status_code == 202
    assert post_api(client, valid_body("b"), token=other).status_code == 202
