"""Admin flows in a real browser: Playwright driving Debian's Chromium, headless, against
Django's live server. `make test` installs Chromium (scripts/ensure-browser)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

CHROMIUM = os.environ.get("SWITCHYARD_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "browser-test-password"
# Where a failing browser test leaves a screenshot of each page it had open, for the person
# reading CI's output.
FAILURES = Path(__file__).resolve().parents[2] / "var" / "browser-failures"

# Playwright's sync API runs an event loop in this thread; the live server's database access
# from this thread is still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: `make test` installs it (scripts/ensure-browser), "
            "or apt-get install chromium; SWITCHYARD_CHROMIUM names another binary"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()
_open_sessions: list[Session] = []


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a failed test, a screenshot of every page it opened, under var/browser-failures."""
    _open_sessions.clear()
    yield
    if request.node.stash.get(FAILED, False):
        FAILURES.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.nodeid)[-150:]
        for n, session in enumerate(_open_sessions):
            target = FAILURES / f"{name}-{n}.png"
            try:
                session.page.screenshot(path=str(target), full_page=True)
            except Exception as error:  # a closed page must not hide the failure
                print(f"no screenshot of page {n}: {error}")
            else:
                print(f"screenshot of the failed test's page: {target}")
    _open_sessions.clear()


class Session:
    """One logged-in browser page, with every CSP violation and console error it meets."""

    def __init__(self, page: Any) -> None:
        self.page = page
        _open_sessions.append(self)
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("response", self._response)
        # Reported by the browser for each blocked load or inline script/style.
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => console.error("
            "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
        )

    def _console(self, message: Any) -> None:
        # A failed load is reported below with its URL; the console says only its status.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(message.text)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status} {response.url}")

    def visit(self, url: str) -> Any:
        response = self.page.goto(url)
        self.page.wait_for_load_state("load")
        return response


def log_in(browser: Any, base_url: str, user: User) -> Session:
    session = Session(browser.new_context().new_page())
    session.visit(f"{base_url}/admin/login/")
    session.page.fill("#id_username", user.get_username())
    session.page.fill("#id_password", PASSWORD)
    session.page.click("input[type=submit]")
    session.page.wait_for_url(f"{base_url}/admin/")
    return session


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def viewer(db: None) -> User:
    """Staff who may look at approvals but not decide them."""
    user = User.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_approval"))
    return user
