"""Pages that fit: at 1280 px no detail page clips its content (wide content scrolls inside its
own box or wraps), expanded tracebacks keep their lines, and at 1400 px the lists need no
sideways scrolling."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from events import dispatch
from events.models import Source

from .conftest import log_in
from .long_pages import STRIPE_LINK, long_pages

pytestmark = pytest.mark.django_db(transaction=True)

# Every element that hides what overflows it (overflow hidden or clip) and has more content
# than room, and how far the page itself is wider than the window. Closed <details> are opened
# first: an operator opens them. The skip link is hidden on purpose; a form field scrolls its
# own value.
CLIPPED = """() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const hides = v => v === 'hidden' || v === 'clip';
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + [...el.classList].map(c => '.' + c).join('');
  const clipped = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.visually-hidden') || el.matches('input, textarea, select')) continue;
    const style = getComputedStyle(el);
    const wide = hides(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
    const tall = hides(style.overflowY) && el.scrollHeight > el.clientHeight + 1;
    if (wide || tall) {
      const path = [el.parentElement, el].filter(Boolean).map(name).join(' > ');
      clipped.push(`${path}: ${el.scrollWidth}x${el.scrollHeight} in `
        + `${el.clientWidth}x${el.clientHeight}`);
    }
  }
  return {clipped, page: document.documentElement.scrollWidth - window.innerWidth};
}"""

# Each expanded traceback: whether its lines are kept whole, and how wide it is.
TRACEBACKS = """() => [...document.querySelectorAll('.traceback pre')].map(pre => {
  pre.closest('details').open = true;
  const style = getComputedStyle(pre);
  return {whiteSpace: style.whiteSpace, mono: style.fontFamily.includes('mono'),
          width: pre.clientWidth};
})"""

# A list's results box: how much wider its table is than the box.
LIST_OVERFLOW = """() => {
  const box = document.querySelector('#changelist-form .results');
  return box === null ? null : box.scrollWidth - box.clientWidth;
}"""


@pytest.fixture
def pages(routes: None, settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    settings.SWITCHYARD_RECOVERY_FROM = "billing@northwind.example"
    # The requeue among the delivery's attempts sends nothing to a broker.
    monkeypatch.setattr(dispatch, "enqueue", lambda jobs: None)
    shop = Source.objects.create(
        slug="shop",
        kind="hmac",
        secrets=["pages-fit-secret-0123456789"],
        description="The shop's webhooks, " + "x" * 150,
    )
    return long_pages(shop)


def test_no_detail_page_clips_its_content_at_1280_px(
    browser: Any, live_server: Any, superuser: User, pages: dict[str, str]
) -> None:
    session = log_in(browser, live_server.url, superuser)
    session.page.set_viewport_size({"width": 1280, "height": 900})

    found = {}
    for name, url in pages.items():
        response = session.visit(live_server.url + url)
        assert response.status == 200, name
        found[name] = session.page.evaluate(CLIPPED)

    assert {name: result["clipped"] for name, result in found.items() if result["clipped"]} == {}
    assert {name: result["page"] for name, result in found.items()} == dict.fromkeys(pages, 0)
    assert session.problems == []


def test_expanded_tracebacks_keep_their_lines_in_a_wide_box(
    browser: Any, live_server: Any, superuser: User, pages: dict[str, str]
) -> None:
    session = log_in(browser, live_server.url, superuser)
    session.page.set_viewport_size({"width": 1280, "height": 900})

    session.visit(live_server.url + pages["delivery"])
    tracebacks = session.page.evaluate(TRACEBACKS)

    assert len(tracebacks) == 4
    assert {(t["whiteSpace"], t["mono"]) for t in tracebacks} == {("pre", True)}
    # The page's whole content width, not a table column.
    assert min(t["width"] for t in tracebacks) >= 700
    assert session.problems == []


def test_an_agents_trace_shows_its_figures_without_scrolling(
    browser: Any, live_server: Any, superuser: User, pages: dict[str, str]
) -> None:
    session = log_in(browser, live_server.url, superuser)
    session.page.set_viewport_size({"width": 1280, "height": 900})

    session.visit(live_server.url + pages["trace"])
    trace = session.page.locator(".field-steps div.readonly")

    # cost, latency and stop reason in view: the trace's box has nothing to scroll to
    assert trace.evaluate("box => box.scrollWidth - box.clientWidth") == 0
    headings = session.page.locator("table.step-trace th").all_inner_texts()
    assert [h.lower() for h in headings[-3:]] == ["cost", "latency", "stop reason"]
    assert session.problems == []


def test_the_email_awaiting_approval_wraps_with_its_whole_payment_link_in_view(
    browser: Any, live_server: Any, superuser: User, pages: dict[str, str]
) -> None:
    session = log_in(browser, live_server.url, superuser)
    session.page.set_viewport_size({"width": 1280, "height": 900})

    session.visit(live_server.url + pages["approval"])
    email = session.page.locator(".field-will_do pre")

    assert STRIPE_LINK in email.inner_text().replace("\n", "")
    # nothing to scroll to: every line, the link's included, is in view
    assert email.evaluate("pre => pre.scrollWidth - pre.clientWidth") == 0
    assert session.problems == []


LISTS = (
    "admin:events_event_changelist",
    "admin:events_delivery_changelist",
    "admin:events_deadletter_changelist",
    "admin:events_source_changelist",
    "admin:events_route_changelist",
    "admin:events_schedule_changelist",
    "admin:events_scheduletick_changelist",
    "admin:handlers_approval_changelist",
)


def test_the_lists_fit_at_1400_px(
    browser: Any, live_server: Any, superuser: User, pages: dict[str, str]
) -> None:
    session = log_in(browser, live_server.url, superuser)
    session.page.set_viewport_size({"width": 1400, "height": 900})

    overflow = {}
    for name in LISTS:
        response = session.visit(live_server.url + reverse(name))
        assert response.status == 200, name
        overflow[name] = session.page.evaluate(LIST_OVERFLOW)
        assert session.page.evaluate(CLIPPED) == {"clipped": [], "page": 0}, name

    assert overflow == dict.fromkeys(LISTS, 0)
    assert session.problems == []
