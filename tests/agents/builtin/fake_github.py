"""A fake GitHub REST API: a real HTTP server in the test process, keeping every request.

It serves the calls the PR reviewer makes: a pull request's files, an issue's comments (paged
as GitHub pages them) and creating a comment. Comments it creates are kept, so a test can
count them. ``lose_next_post(status)`` makes the next comment be created and its answer
replaced by an error, as when a proxy times out after GitHub did the work.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FILES_RE = re.compile(r"^/repos/([^/]+)/([^/]+)/pulls/(\d+)/files$")
COMMENTS_RE = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class FakeGitHub:
    token: str
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lost_post_status: int | None = None
    post_status: int | None = None  # answer every POST with this error instead
    redirect_files_to: str | None = None  # answer the files listing with a 302 to this URL

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def lose_next_post(self, status: int = 502) -> None:
        self.lost_post_status = status

    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    def _answer(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append(request)
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return 401, {"message": "Bad credentials"}, {}
            page = int(request.query.get("page", "1"))
            per_page = int(request.query.get("per_page", "30"))
            if request.method == "GET" and (m := FILES_RE.match(request.path)):
                if self.redirect_files_to is not None:
                    return 302, {"message": "Moved"}, {"location": self.redirect_files_to}
                items = self.files.get("/".join(m.groups()), [])
                return 200, items[(page - 1) * per_page : page * per_page], {}
            if (m := COMMENTS_RE.match(request.path)) is None:
                return 404, {"message": "Not Found"}, {}
            thread = self.comments.setdefault("/".join(m.groups()), [])
            if request.method == "GET":
                return 200, thread[(page - 1) * per_page : page * per_page], {}
            if self.post_status is not None:
                return self.post_status, {"message": "Resource not accessible by integration"}, {}
            number = sum(len(c) for c in self.comments.values()) + 1
            created = {
                "id": number,
                "body": request.body["body"],
                "html_url": f"https://github.com/{m.group(1)}/{m.group(2)}/pull/"
                f"{m.group(3)}#issuecomment-{number}",
            }
            thread.append(created)
            if self.lost_post_status is not None:
                status, self.lost_post_status = self.lost_post_status, None
                return status, {"message": "Server Error"}, {"retry-after": "0"}
            return 201, created, {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    method=method,
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw) if raw else None,
                )
                status, body, headers = api._answer(request)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> FakeGitHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
