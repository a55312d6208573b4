"""The PR reviewer's settings, checked by ``manage.py check``.

A GitHub token lets it read diffs and post its review as a PR comment; without one it reviews
the payload and keeps the comment in the outcome. The token is sent only to the API URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from agents_project.appsettings import Setting, at_least, number, register, text

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _api_url_problem(value: Any) -> str | None:
    """The token travels to this URL: https, or plain http to this machine only."""
    parts = urlsplit(str(value))
    if parts.hostname and (
        parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS)
    ):
        return None
    return "must be an https URL (plain http only to 127.0.0.1, localhost or ::1)"


GITHUB_TOKEN = Setting("SWITCHYARD_GITHUB_TOKEN", "", text)
GITHUB_API_URL = Setting(
    "SWITCHYARD_GITHUB_API_URL", "https://api.github.com", text, _api_url_problem
)
GITHUB_TIMEOUT = Setting("SWITCHYARD_GITHUB_TIMEOUT", 10.0, number, at_least(0.1))

register("the built-in agent github.pr_review", [GITHUB_TOKEN, GITHUB_API_URL, GITHUB_TIMEOUT])
