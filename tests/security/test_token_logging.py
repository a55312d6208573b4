"""API tokens never reach a log line, over the Procfile's real web server: not a token put in
a query string (which the access log would print with the request line), not a wrong one in
the Authorization header, not a right one."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

from events.tokens import create_token
from tests.conftest import wait_until
from tests.web_server import WebServer

pytestmark = pytest.mark.django_db(transaction=True)


def status_of(url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> int:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=body, method="POST" if body else "GET", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_no_token_appears_in_the_web_servers_log(web_server: WebServer, db: None) -> None:
    _, token = create_token("logging", scopes=["publish", "read"])
    guessed = "sy_0badc0de_" + "g" * 43
    event_path = f"/api/events/{uuid.uuid4()}"

    in_query = status_of(f"{web_server.url}{event_path}?token={token}")
    wrong = status_of(f"{web_server.url}{event_path}", {"Authorization": f"Bearer {guessed}"})
    published = status_of(
        f"{web_server.url}/api/events?token={token}",
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        json.dumps({"type": "order.paid", "payload": {}}).encode(),
    )

    assert (in_query, wrong, published) == (401, 401, 202)

    # once the access log has a line for each request, none holds the token
    def logged() -> bool:
        log = web_server.log()
        return log.count(f"GET {event_path}") >= 2 and "POST /api/events" in log

    wait_until(logged, timeout=10, what="an access log line for each request")
    log = web_server.log()
    assert token not in log and guessed not in log
    # not even the secret part (which may itself hold an underscore)
    assert token.split("_", 2)[2] not in log
    # the lines have the path, without the query
    assert log.count(f'"GET {event_path} HTTP/1.1" 401') == 2
    assert '"POST /api/events HTTP/1.1" 202' in log
