"""A fake Messages API: a real HTTP server in the test process, answering from a script.

Each test queues the answers it wants (``fake_api.reply(...)``, ``fake_api.error(...)``); the
server hands them out in order, one per request, and keeps every request it received. The
real ``anthropic`` SDK talks to it through ``ANTHROPIC_BASE_URL``: in this process (fixture
``fake_api``), or in a worker process given the server's ``url`` in its environment.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from handlers.context import EventData, HandlerContext


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeMessagesAPI:
    def __init__(self) -> None:
        self.script: list[Scripted] = []
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        # Set by stop(): a scripted delay ends early, so no answer outlives its test.
        self.stopped = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- scripting ---

    def reply(
        self,
        content: list[dict[str, Any]],
        *,
        stop_reason: str = "end_turn",
        usage: dict[str, int] | None = None,
        model: str = "claude-sonnet-5-5",
        delay: float = 0.0,
    ) -> None:
        number = len(self.script) + 1
        self.script.append(
            Scripted(
                200,
                {
                    "id": f"msg_{number:03d}",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": usage or {"input_tokens": 10, "output_tokens": 5},
                },
                delay=delay,
            )
        )

    def text(self, text: str, **kwargs: Any) -> None:
        self.reply([{"type": "text", "text": text}], **kwargs)

    def tool_use(self, name: str, tool_input: dict[str, Any], *, id: str, **kwargs: Any) -> None:
        block = {"type": "tool_use", "id": id, "name": name, "input": tool_input}
        self.reply([block], stop_reason="tool_use", **kwargs)

    def error(
        self,
        status: int,
        kind: str,
        message: str = "scripted",
        headers: dict[str, str] | None = None,
    ) -> None:
        body = {"type": "error", "error": {"type": kind, "message": message}}
        self.script.append(Scripted(status, body, headers or {}))

    # --- serving ---

    def _next(self, received: Received) -> Scripted:
        with self.lock:
            self.requests.append(received)
            if self.script:
                return self.script.pop(0)
        # Loud, not retried by the SDK: a test that makes more calls than it scripted fails.
        empty = {"type": "invalid_request_error", "message": "fake API: script is empty"}
        return Scripted(400, {"type": "error", "error": empty})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                received = Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw or b"{}"),
                )
                scripted = api._next(received)
                if scripted.delay:
                    api.stopped.wait(scripted.delay)
                data = json.dumps(scripted.body).encode()
                try:
                    self.send_response(scripted.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for name, value in scripted.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[FakeMessagesAPI]:
    api = FakeMessagesAPI()
    api.start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    settings.SWITCHYARD_AGENT_PROVIDER = "anthropic"
    settings.SWITCHYARD_AGENT_MAX_RETRIES = 1
    settings.ANTHROPIC_TIMEOUT = 5.0
    yield api
    api.stop()


@pytest.fixture
def make_ctx() -> Any:
    def make(
        payload: Any = None,
        *,
        event_id: str = "5b0f6c1e-0000-4000-8000-000000000001",
        handler: str = "test.agent",
        steps: list[dict[str, Any]] | None = None,
    ) -> HandlerContext:
        return HandlerContext(
            event=EventData(
                id=event_id,
                type="ticket.created",
                payload={"subject": "Refund please"} if payload is None else payload,
                source="helpdesk",
                external_id="T-1",
                partition_key="",
                schema_version=1,
                received_at="2026-01-01T00:00:00+00:00",
            ),
            attempt=1,
            handler=handler,
            idempotency_key=f"{event_id}:{handler}",
            logger=logging.getLogger("tests.agents"),
            record_step=None if steps is None else steps.append,
        )

    return make
