"""Clients that trickle a request cannot starve the web tier, against the Procfile's real web
server (gunicorn, gthread workers) over real sockets: a body that takes longer than
SWITCHYARD_BODY_READ_SECONDS to arrive is answered 408 and its thread freed, and meanwhile a
signed webhook and /healthz are answered."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events.models import Event, Source
from events.webhooks.hmac import HEADER, sign
from tests.conftest import _test_database_url
from tests.web_server import WebServer

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "slow-clients-secret"
DEADLINE = 2  # seconds a body may take, for this server
TRICKLERS = 16  # more than the Procfile's 3 x 4 threads


@pytest.fixture
def server(django_db_blocker: Any, tmp_path: Path) -> Iterator[WebServer]:
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    web = WebServer(
        database_url=database_url,
        log_path=tmp_path / "gunicorn.log",
        env={"SWITCHYARD_BODY_READ_SECONDS": str(DEADLINE)},
    ).start()
    yield web
    web.stop()


class Trickler(threading.Thread):
    """Sends a webhook's headers, then its body one byte every half second, and keeps the
    first status line the server answers with."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.answer = ""
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(
                b"POST /hooks/shop HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"
            )
            while not self.stop.is_set() and not self.answer:
                try:
                    sock.sendall(b" ")
                    self.answer = sock.recv(200).decode(errors="replace").split("\r\n")[0]
                except TimeoutError:
                    continue
                except OSError:
                    self.answer = self.answer or "closed"


def signed_post(url: str, body: bytes) -> tuple[int, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
    headers = {"Content-Type": "application/json", HEADER: sign(SECRET, body)}
    connection.request("POST", "/hooks/shop", body=body, headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status, time.monotonic() - started


def test_trickling_bodies_are_cut_at_the_deadline_and_others_are_answered(
    server: WebServer, db: None
) -> None:
    Source.objects.create(slug="shop", kind="hmac", secrets=[SECRET])
    tricklers = [Trickler(server.port) for _ in range(TRICKLERS)]
    for trickler in tricklers:
        trickler.start()
    time.sleep(0.5)

    # while they trickle, a genuine webhook and a health check get through
    body = json.dumps({"type": "order.paid", "id": "o-1", "payload": {}}).encode()
    webhook, webhook_took = signed_post(server.url, body)
    health = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    health.request("GET", "/healthz")
    healthz = health.getresponse().status

    for trickler in tricklers:
        trickler.join(timeout=TRICKLERS / 4 * DEADLINE + 10)
        trickler.stop.set()

    assert (webhook, healthz) == (202, 200)
    # at worst behind the tricklers one worker's four threads took, each cut at the deadline
    assert webhook_took < TRICKLERS / 4 * DEADLINE + 5
    assert Event.objects.filter(external_id="o-1").count() == 1
    assert {t.answer for t in tricklers} == {"HTTP/1.1 408 Request Timeout"}
