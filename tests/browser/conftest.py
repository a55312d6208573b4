"""Admin flows in a real browser: Playwright driving Debian's Chromium, headless, against
Django's live server. `make test` installs Chromium (scripts/ensure-browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

CHROMIUM = os.environ.get("SWITCHYARD_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "browser-test-password"

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


class Session:
    """One logged-in browser page, with every CSP violation and console error it meets."""

    def __init__(self, page: Any) -> None:
        self.page = page
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
