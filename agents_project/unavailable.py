"""A database that cannot be reached is a 503 with Retry-After on the machine endpoints.

A webhook or API request that meets PostgreSQL restarting or failing over gets a JSON 503 that
tells the sender to try again, instead of a 500: the request's transaction was rolled back, so
nothing of it was written, and senders that retry (GitHub's redeliver, Stripe's retries, our
API clients) send it again. Other pages keep Django's own error handling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger("switchyard.web")

# Seconds a sender is asked to wait: about what a PostgreSQL restart or failover takes.
RETRY_AFTER = 5
MACHINE_PATHS = ("/hooks/", "/api/")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, OperationalError | InterfaceError):
            return None
        if not request.path.startswith(MACHINE_PATHS):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
        response = JsonResponse(
            {"error": "the database is unavailable; nothing was stored, try again"}, status=503
        )
        response["Retry-After"] = str(RETRY_AFTER)
        return response
