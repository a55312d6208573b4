"""A Content-Security-Policy header on every response.

Django 5.2 has no CSP support of its own (6.0 adds it) and one header needs no dependency:
this middleware sets ``SWITCHYARD_CONTENT_SECURITY_POLICY`` (settings.py has the default and
what it allows) on every response that has none. The Django admin and Switchyard's pages work
under the default (tests/browser/test_admin_csp.py). A deployment that serves assets from
elsewhere sets the setting to its own policy; an empty value sends none.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = str(settings.SWITCHYARD_CONTENT_SECURITY_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and HEADER not in response:
            response[HEADER] = self.policy
        return response
