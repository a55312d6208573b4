"""The Anthropic client an agent uses, and how its failures map onto the handler contract.

One client per process, made on first use and shared by its threads (the SDK's client and its
HTTP connection pool are thread-safe): a threads-pool worker running hundreds of agents keeps
one pool of keep-alive connections instead of one client per thread. The process id is part of
the key, so a prefork child never uses a client made before the fork. ``ANTHROPIC_API_KEY``
and ``ANTHROPIC_BASE_URL`` are read by the SDK from the environment; a change to either (or to
the settings below) makes a new client.

Bounds: every request has ``ANTHROPIC_TIMEOUT`` seconds, and the SDK retries it at most
``SWITCHYARD_AGENT_MAX_RETRIES`` times (connection errors, timeouts, 408, 409, 429, 5xx), so
one run of an agent makes at most ``max_turns * (1 + SWITCHYARD_AGENT_MAX_RETRIES)`` HTTP
requests. A request bounded by its attempt's time left (``Agent`` passes it as the timeout when
it is shorter) is made by a copy of the client without retries, and retried by the agent
itself only while the pause fits in the time left (``pause_before_retry``). Celery retries the
delivery beyond that.

When the API names a wait (``retry-after``) longer than ``MAX_INLINE_WAIT`` the SDK does not
sleep on it in the worker: the error is raised at once and becomes a ``TransientError`` whose
``retry_after`` schedules the delivery's next attempt.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from typing import Any

import anthropic
from anthropic import APIRequest, APIResponse, CallNext, Middleware

from handlers import conf
from handlers.errors import HandlerError, PermanentError, TransientError

# The SDK's backoff between tries (anthropic._constants), used for the retries made here.
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0

# Longest server-requested wait (seconds) the SDK may sleep in-process before its one retry.
MAX_INLINE_WAIT = 5.0

# A request bounded by its attempt's time left is tried again only if, after the pause, at least
# this many seconds are left for it.
RETRY_TIME = 1.0

# Statuses retrying can fix: timeout, conflict, rate limit; every 5xx (529 is "overloaded").
_TRANSIENT_4XX = frozenset({408, 409, 429})

_lock = threading.Lock()
# (configuration, client, the same client without the SDK's retries)
_cached: tuple[tuple[Any, ...], anthropic.Anthropic, anthropic.Anthropic] | None = None


class _NoLongInlineWaits(Middleware):
    """Stop the SDK from sleeping a long ``retry-after`` inside a worker thread."""

    def handle(self, request: APIRequest, call_next: CallNext) -> APIResponse[Any]:
        response = call_next(request)
        http = response.http_response
        if not http.is_success:
            wait = retry_after(http.headers)
            if wait is not None and wait > MAX_INLINE_WAIT:
                # The SDK obeys this header before its own retry policy.
                http.headers["x-should-retry"] = "false"
        return response


def get_client(*, retries: bool = True) -> anthropic.Anthropic:
    """This process's client for the current configuration; with ``retries=False``, its copy
    that makes each request once (made with it, not per request: a copy of the client costs
    more than building the request)."""
    config = (
        os.getpid(),
        os.environ.get("ANTHROPIC_API_KEY"),
        os.environ.get("ANTHROPIC_BASE_URL"),
        float(conf.ANTHROPIC_TIMEOUT.get()),
        int(conf.AGENT_MAX_RETRIES.get()),
    )
    global _cached
    cached = _cached
    if cached is None or cached[0] != config:
        with _lock:
            if _cached is None or _cached[0] != config:
                client = anthropic.Anthropic(
                    timeout=config[3],
                    max_retries=config[4],
                    middleware=[_NoLongInlineWaits()],
                )
                _cached = (config, client, client.with_options(max_retries=0))
            cached = _cached
    return cached[1] if retries else cached[2]


def retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def pause_before_retry(exc: anthropic.AnthropicError, tries: int) -> float | None:
    """Seconds to wait before trying a failed request again, after ``tries`` tries, as the
    SDK's own retries would (the same statuses, the same backoff, a ``retry-after`` up to
    ``MAX_INLINE_WAIT``); None when it would not: a permanent error, a timeout (it used the
    time it had), a long server-requested wait, or ``SWITCHYARD_AGENT_MAX_RETRIES`` spent.
    For requests the SDK cannot retry itself: those bounded by their attempt's time left."""
    if tries > int(conf.AGENT_MAX_RETRIES.get()) or isinstance(exc, anthropic.APITimeoutError):
        return None
    if isinstance(exc, anthropic.APIStatusError):
        headers = exc.response.headers
        should = headers.get("x-should-retry")
        if should == "false" or (should != "true" and not _transient(exc.status_code)):
            return None
        wait = retry_after(headers)
        if wait is not None:
            return wait if wait <= MAX_INLINE_WAIT else None
    elif not isinstance(exc, anthropic.APIConnectionError):
        return None
    backoff = min(INITIAL_RETRY_DELAY * 2 ** (tries - 1), MAX_RETRY_DELAY)
    return backoff * (1 - 0.25 * random.random())  # jitter, as the SDK's


def map_error(exc: anthropic.AnthropicError) -> HandlerError | None:
    """The handler-contract error for an SDK error, or None if it is not one we classify."""
    if isinstance(exc, anthropic.APITimeoutError):
        return TransientError(f"Anthropic API timed out after {conf.ANTHROPIC_TIMEOUT.get()} s")
    if isinstance(exc, anthropic.APIConnectionError):
        return TransientError(f"could not reach the Anthropic API: {exc}")
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        message = f"Anthropic API answered {status}: {_error_message(exc)}"
        if _transient(status):
            return TransientError(message, retry_after=retry_after(exc.response.headers))
        # 400, 401, 403, 404 and any other 4xx: the same request would fail again.
        return PermanentError(message)
    return None


def _transient(status: int) -> bool:
    """A status that trying again may fix: 408, 409, 429 and every 5xx."""
    return status in _TRANSIENT_4XX or status >= 500


def _error_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return f"{error.get('type', 'error')}: {error['message']}"
    return exc.message
