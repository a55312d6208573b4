"""The request log: a refused webhook or API request is kept, secrets removed, shown with its
source in the admin; a flood is capped, old entries pruned, accepted requests not logged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events import request_log
from events.liveness import client as redis_client
from events.models import RejectedRequest, Source

from .conftest import hook_body, post_hook

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cap() -> None:
    """The per-minute cap counts every refused request of this minute, other tests' too."""
    redis = redis_client()
    for key in redis.scan_iter(match="switchyard:request-log:*"):
        redis.delete(key)


def test_a_refused_webhook_is_kept_with_its_secrets_removed(
    client: Client, hmac_source: Source, routes: None
) -> None:
    body = hook_body("evt_bad")
    response = post_hook(
        client,
        body,
        secret="wrong-secret",
        HTTP_X_DEBUG_NOTE="signed with new-secret, I think",
        HTTP_USER_AGENT="Sender/1.0",
    )

    assert response.status_code == 401
    logged = RejectedRequest.objects.get()
    assert (logged.endpoint, logged.slug, logged.source, logged.status) == (
        "hooks",
        "shop",
        hmac_source,
        401,
    )
    assert logged.reason == response.json()["error"]
    assert (logged.method, logged.path, logged.body_bytes) == ("POST", "/hooks/shop", len(body))
    assert logged.headers["X-Switchyard-Signature"] == "[redacted]"
    assert logged.headers["X-Debug-Note"] == "signed with [redacted], I think"
    assert logged.headers["User-Agent"] == "Sender/1.0"
    assert "new-secret" not in str(logged.headers)


def test_an_unknown_source_and_an_accepted_webhook(client: Client, hmac_source: Source) -> None:
    assert post_hook(client, hook_body("evt_ok")).status_code == 202
    assert post_hook(client, hook_body("evt_2"), slug="shopp").status_code == 404

    (logged,) = RejectedRequest.objects.all()
    assert (logged.slug, logged.source, logged.status) == ("shopp", None, 404)
    assert logged.reason == "no webhook source 'shopp'"


def test_a_refused_api_request_is_kept_without_its_token(client: Client, api_token: str) -> None:
    response = client.post(
        "/api/events",
        data=b'{"type": "x"}',
        content_type="application/json",
        headers={"Authorization": "Bearer sy_not_a_real_token_at_all"},
    )

    assert response.status_code == 401
    logged = RejectedRequest.objects.get()
    assert (logged.endpoint, logged.status) == ("api", 401)
    assert logged.headers["Authorization"] == "[redacted]"


def test_a_flood_of_bad_requests_records_only_the_cap(
    client: Client, hmac_source: Source, settings: Any
) -> None:
    settings.SWITCHYARD_REQUEST_LOG_PER_MINUTE = 3

    codes = [post_hook(client, hook_body(f"e{n}"), secret="bad").status_code for n in range(8)]

    assert codes == [401] * 8  # every request still gets its answer
    assert RejectedRequest.objects.count() == 3


def test_entries_older_than_the_retention_are_pruned(hmac_source: Source, settings: Any) -> None:
    settings.SWITCHYARD_REQUEST_LOG_DAYS = 7
    now = timezone.now()
    for days in (1, 6, 8, 30):
        RejectedRequest.objects.create(
            received_at=now - timedelta(days=days),
            endpoint="hooks",
            status=401,
            reason="x",
            method="POST",
            path="/hooks/shop",
        )

    assert request_log.prune() == 2
    kept = sorted((now - r.received_at).days for r in RejectedRequest.objects.all())
    assert kept == [1, 6]


def test_the_source_page_links_to_its_refused_requests(
    admin_client: Client, client: Client, hmac_source: Source
) -> None:
    post_hook(client, hook_body("evt_a"), secret="bad")
    post_hook(client, hook_body("evt_b"), secret="bad")

    page = admin_client.get(reverse("admin:events_source_change", args=[hmac_source.pk]))
    assert "2 refused" in page.content.decode()
    listing = admin_client.get(
        reverse("admin:events_rejectedrequest_changelist") + f"?source__id__exact={hmac_source.pk}"
    )
    assert listing.status_code == 200
    assert len(listing.context["cl"].result_list) == 2
    detail = admin_client.get(
        reverse("admin:events_rejectedrequest_change", args=[RejectedRequest.objects.first().pk])
    )
    assert "[redacted]" in detail.content.decode()
