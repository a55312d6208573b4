"""The fake GitHub API with the pull request's one changed file, and the signed github source."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from events.models import Source

from ..fake_github import FakeGitHub
from .helpers import PATCH, PR, TOKEN, WEBHOOK_SECRET


@pytest.fixture
def github(settings: Any) -> Iterator[FakeGitHub]:
    server = FakeGitHub(token=TOKEN).start()
    server.files[PR] = [
        {
            "filename": "README.md",
            "status": "modified",
            "additions": 1,
            "deletions": 1,
            "changes": 2,
            "patch": PATCH,
        }
    ]
    settings.SWITCHYARD_GITHUB_API_URL = server.url
    settings.SWITCHYARD_GITHUB_TOKEN = TOKEN
    settings.SWITCHYARD_GITHUB_TIMEOUT = 5.0
    yield server
    server.stop()


@pytest.fixture
def source(routes: None) -> Source:
    return Source.objects.create(slug="gh", kind="github", secrets=[WEBHOOK_SECRET])
