"""Bodies sent with ``Transfer-Encoding: chunked`` (no Content-Length) are read up to the body
limit and verified like any other, against the Procfile's real web server (gunicorn)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from events import conf
from events.models import Event, Source
from events.tokens import create_token
from events.webhooks.hmac import HEADER, sign
from tests.web_server import WebServer

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "chunked-test-secret"


def chunks(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def post_chunked(
    url: str, path: str, body: bytes, headers: dict[str, str], size: int = 7
) -> tuple[int, dict[str, Any]]:
    host, _, port = url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", path, body=chunks(body, size), headers=headers,
                           encode_chunked=True)  # fmt: skip
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def shop(db: None) -> Source:
    return Source.objects.create(slug="shop", kind="hmac", secrets=[SECRET])


def envelope(**payload: Any) -> bytes:
    return json.dumps({"type": "order.paid", "id": "ord-1", "payload": payload}).encode()


def test_a_small_signed_chunked_webhook_is_verified_and_stored(
    web_server: WebServer, shop: Source
) -> None:
    body = envelope(order=7, note="sent in chunks of seven bytes")
    headers = {"Content-Type": "application/json", HEADER: sign(SECRET, body)}

    status, answer = post_chunked(web_server.url, "/hooks/shop", body, headers)

    assert status == 202, answer
    assert Event.objects.get(pk=answer["id"]).payload == {
        "order": 7,
        "note": "sent in chunks of seven bytes",
    }


def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(
    web_server: WebServer, shop: Source
) -> None:
    limit = conf.MAX_BODY_BYTES.get()
    body = envelope(padding="x" * limit)
    headers = {"Content-Type": "application/json", HEADER: sign(SECRET, body)}

    status, answer = post_chunked(web_server.url, "/hooks/shop", body, headers, size=64 * 1024)

    assert (status, answer) == (413, {"error": f"body is larger than the limit of {limit} bytes"})
    assert not Event.objects.exists()


def test_a_chunked_api_publish_is_read_whole(web_server: WebServer, db: None) -> None:
    _, token = create_token("chunks")
    body = json.dumps({"type": "order.paid", "payload": {"order": 8}}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    status, answer = post_chunked(web_server.url, "/api/events", body, headers)

    assert status == 202, answer
    assert Event.objects.get(pk=answer["id"]).payload == {"order": 8}


def test_a_server_that_does_not_end_chunked_bodies_asks_for_a_length(
    live_server: Any, shop: Source
) -> None:
    """Django's development server passes the chunked stream through as it is: reading it to
    the end would wait for the client. It gets a clear 411, never a hang or a 500."""
    body = envelope(order=9)
    headers = {"Content-Type": "application/json", HEADER: sign(SECRET, body)}

    # Sent in one write: the server answers without reading the body, and a client still
    # sending chunks could find the connection closed under it.
    host, _, port = live_server.url.removeprefix("http://").partition(":")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        (
            f"POST /hooks/shop HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n{head}\r\n"
        ).encode()
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    # The first answer only: the server may take what it did not read for a next request.
    head_part, _, rest = raw.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )  # fmt: skip
    status, answer = int(head_part.split()[1]), json.loads(rest[:length])

    assert (status, answer) == (
        411,
        {"error": "this server needs a Content-Length; send the body unchunked"},
    )
    assert not Event.objects.exists()
