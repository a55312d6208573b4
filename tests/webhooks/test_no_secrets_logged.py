"""Secrets never reach the logs, whatever a request gets wrong."""

from __future__ import annotations

import base64
import logging

import pytest
from django.test import Client

from events.models import Source

from .conftest import KIND_NAMES, post, signed_headers

pytestmark = pytest.mark.django_db

BODY = b'{"type": "x", "id": "evt_1", "object": "event", "payload": {}}'
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key entirely").decode()

# Each request is wrong in a different way: no signature, a garbage one, a stale timestamp.
BAD_HEADERS = [
    {},
    {
        "X-Hub-Signature-256": "sha256=" + "0" * 64,
        "Stripe-Signature": "t=1,v1=" + "0" * 64,
        "X-Slack-Signature": "v0=" + "0" * 64,
        "X-Slack-Request-Timestamp": "1",
        "webhook-id": "msg_1",
        "webhook-timestamp": "1",
        "webhook-signature": "v1,AAAA",
        "X-Switchyard-Signature": "sha256=" + "0" * 64,
    },
]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_rejected_requests_log_no_secret(
    kind: str,
    client: Client,
    caplog: pytest.LogCaptureFixture,
    kind_sources: dict[str, Source],
) -> None:
    source = kind_sources[kind]
    caplog.set_level(logging.DEBUG)
    # and, in the kind's own scheme, signed with another secret and over another body
    requests = [
        *BAD_HEADERS,
        signed_headers(kind, BODY, secret=OTHER_SECRET),
        signed_headers(kind, BODY + b" "),
    ]

    for headers in requests:
        response = post(client, source.slug, BODY, headers)
        assert 400 <= response.status_code < 500

    assert caplog.records, "the rejections should have been logged"
    for secret in source.secrets:
        assert secret not in caplog.text
        # nor the part after a whsec_ prefix, nor its decoded key's text
        assert secret.removeprefix("whsec_") not in caplog.text
