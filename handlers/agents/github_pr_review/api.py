"""A small GitHub REST client: the few calls the PR reviewer makes, with a token from settings.

``SWITCHYARD_GITHUB_TOKEN`` is sent only to ``SWITCHYARD_GITHUB_API_URL`` (never to a URL
taken from a payload or a response), every request has a timeout, and no message this module
makes contains the token: errors name the method, the path and GitHub's own message.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from . import conf

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
API_VERSION = "2022-11-28"
# What GitHub allows in an owner or repository name; anything else never reaches a URL.
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
# A commit id: SHA-1 (40 hex digits) or, in SHA-256 repositories, 64.
SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class GitHubError(Exception):
    """A GitHub API call failed. ``status`` is None when no answer came (timeout, refused)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth trying again: no answer, a timeout, a rate limit or a server error."""
        if self.status is None or self.status in (408, 429) or self.status >= 500:
            return True
        # A spent rate limit is a 403 with retry-after or x-ratelimit-remaining: 0.
        return self.status == 403 and self.retry_after is not None


class GitHubUnavailable(Exception):
    """No token is configured, so the API is not asked at all."""


@dataclass(frozen=True)
class PullRequestRef:
    """Which pull request a run is about, read from the event (never from model output)."""

    owner: str
    repo: str
    number: int
    head_sha: str = ""  # the commit the pull request's head points at, as GitHub signed it

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def head(self) -> str:
        """``owner/repo#number@sha``: what one review comment is about."""
        return f"{self.full_name}#{self.number}@{self.head_sha}"

    def path(self, tail: str) -> str:
        return f"/repos/{quote(self.owner, safe='')}/{quote(self.repo, safe='')}/{tail}"


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the API's origin (GitHub redirects a renamed repository's
    URLs); urllib would otherwise carry the Authorization header to any host. Refused, the
    3xx answer becomes a GitHubError."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _origin(newurl) != _origin(req.full_url):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


_opener = urllib.request.build_opener(_SameOriginRedirects)


def token() -> str:
    return str(conf.GITHUB_TOKEN.get() or "")


def configured() -> bool:
    return bool(token())


def call(method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
    """The decoded JSON answer of one API call. Raises GitHubUnavailable without a token and
    GitHubError on any failure."""
    secret = token()
    if not secret:
        raise GitHubUnavailable(
            "the GitHub API is not available without a token (SWITCHYARD_GITHUB_TOKEN is not "
            "set); work from the event payload only"
        )
    base = str(conf.GITHUB_API_URL.get()).rstrip("/")
    url = base + path + (f"?{urlencode(params)}" if params else "")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - from settings
    request.add_header("Accept", "application/vnd.github+json")
    request.add_header("X-GitHub-Api-Version", API_VERSION)
    request.add_header("User-Agent", "switchyard-pr-review")
    request.add_header("Authorization", f"Bearer {secret}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    where = f"{method} {path}"
    try:
        with _opener.open(request, timeout=float(conf.GITHUB_TIMEOUT.get())) as response:
            raw = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise GitHubError(
            f"GitHub answered {exc.code} to {where}: {_message(exc)}",
            status=exc.code,
            retry_after=_retry_after(exc),
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise GitHubError(f"GitHub API unreachable for {where}: {reason}") from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise GitHubError(f"GitHub's answer to {where} is over {MAX_RESPONSE_BYTES} bytes")
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise GitHubError(f"GitHub's answer to {where} is not JSON") from None


def pages(path: str, *, max_pages: int) -> list[Any]:
    """The items of a list endpoint, 100 per page, at most ``max_pages`` pages. Pages are
    asked for by number, so no URL from a response is ever followed with the token."""
    items: list[Any] = []
    for page in range(1, max_pages + 1):
        batch = call("GET", path, params={"per_page": 100, "page": page})
        if not isinstance(batch, list):
            raise GitHubError(f"GitHub's answer to GET {path} is not a list")
        items.extend(batch)
        if len(batch) < 100:
            break
    return items


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read(64 * 1024) or b"{}")
    except (ValueError, OSError):
        return exc.reason or "no message"
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or "no message")[:200]


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    """Seconds to wait: ``retry-after``, or for a spent rate limit the time to its reset."""
    raw = exc.headers.get("retry-after") if exc.headers else None
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None
    if exc.headers and exc.headers.get("x-ratelimit-remaining") == "0":
        try:
            return max(0.0, float(exc.headers.get("x-ratelimit-reset", "")) - time.time())
        except ValueError:
            return 60.0
    return None
