"""What the admin shows of replays on other pages: an event's copies and original (both ways),
the events list narrowed to one replay's copies, its "Replay selected events" action, and a
replay's dry-run figures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import Event, Replay
from ..replay import MAX_SELECTED, Filters, dry_run, record
from .common import admin_link, short_id

# An event page lists at most this many of its copies, newest first.
COPIES_SHOWN = 20


class ReplayFilter(admin.SimpleListFilter):
    """``?replay=<id>``: one replay's copies (linked from the replay's page)."""

    title = "replay"
    parameter_name = "replay"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # Reached by link from a replay's page only: listed while it is applied.
        value = self.value()
        return [(str(value), f"replay {value}")] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> QuerySet[Event]:
        value = self.value()
        if not value:
            return queryset
        if not (value.isascii() and value.isdigit() and len(value) <= 18):
            return queryset.none()
        return queryset.filter(replay_id=int(value))


@admin.action(description="Replay selected events", permissions=["replay"])
def replay_selected(
    model_admin: Any, request: HttpRequest, queryset: QuerySet[Event]
) -> HttpResponseRedirect | None:
    """The dry run of a replay of the ticked events, then its confirmation page."""
    ids = list(queryset.order_by().values_list("id", flat=True)[: MAX_SELECTED + 1])
    if len(ids) > MAX_SELECTED:
        model_admin.message_user(
            request,
            f"Tick at most {MAX_SELECTED} events, or choose them on the Replay events page.",
            messages.ERROR,
        )
        return None
    filters = Filters(events=tuple(sorted(str(event_id) for event_id in ids)))
    replay = record(filters, dry_run(filters), by=request.user.get_username())
    return HttpResponseRedirect(reverse("admin:events_replay_confirm", args=[replay.pk]))


def copies_url(replay: Replay) -> str:
    return f"{reverse('admin:events_event_changelist')}?replay={replay.pk}"


def replayed_from(event: Event) -> str | SafeString:
    """On a copy: the event it copies and the replay that made it."""
    if event.replay_of_id is None and event.replay_id is None:
        return "-"
    original = (
        admin_link(event.replay_of, short_id(event.replay_of.pk))
        if event.replay_of is not None
        else "an event since deleted"
    )
    replay = admin_link(event.replay, str(event.replay)) if event.replay is not None else "-"
    return format_html("a copy of {}, made by {}", original, replay)


def replay_copies(event: Event) -> str | SafeString:
    """On an original: its copies, each with its replay."""
    copies = list(
        Event.objects.filter(replay_of=event)
        .select_related("replay")
        .order_by("-received_at")[: COPIES_SHOWN + 1]
    )
    if not copies:
        return "-"
    items = format_html_join(
        "",
        "<li>{} ({}, {})</li>",
        (
            (
                admin_link(copy, short_id(copy.pk)),
                copy.get_status_display(),
                admin_link(copy.replay, str(copy.replay)) if copy.replay else "-",
            )
            for copy in copies[:COPIES_SHOWN]
        ),
    )
    more = "<li>…</li>" if len(copies) > COPIES_SHOWN else ""
    return format_html("<ul>{}{}</ul>", items, SafeString(more))


def figure_rows(replay: Replay) -> list[dict[str, str]]:
    """One row per handler the dry run counted deliveries for, with the agent's averages."""
    rows = []
    for handler, deliveries in sorted((replay.planned_deliveries or {}).items()):
        averages = (replay.agent_averages or {}).get(handler, "not an agent")
        row = {"handler": handler, "deliveries": str(deliveries)}
        if averages is None:
            row.update(per_run="no recent runs", tokens="-", cost="-")
        elif isinstance(averages, str):
            row.update(per_run=averages, tokens="-", cost="-")
        else:
            cost = Decimal(averages["cost_usd"])
            row.update(
                per_run=(
                    f"{averages['tokens']} tokens, ${cost:.4f} "
                    f"(average of its last {averages['runs']} runs)"
                ),
                tokens=str(averages["tokens"] * deliveries),
                cost=f"${cost * deliveries:.4f}",
            )
        rows.append(row)
    return rows


def estimate_text(replay: Replay) -> str:
    if replay.estimated_tokens is None:
        return "none: no agent with recent runs"
    text = f"~{replay.estimated_tokens} tokens, ~${replay.estimated_cost_usd or 0:.4f}"
    missing = [name for name, value in (replay.agent_averages or {}).items() if value is None]
    if missing:
        text += f" (not counting {', '.join(sorted(missing))}: no recent runs)"
    return text


def figures_table(replay: Replay) -> SafeString:
    rows = figure_rows(replay)
    if not rows:
        return format_html("<p>{}</p>", "No deliveries: no enabled route takes these events.")
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (row["handler"], row["deliveries"], row["per_run"], row["tokens"], row["cost"])
            for row in rows
        ),
    )
    return format_html(
        '<table class="replay-figures"><thead><tr><th>handler</th><th>deliveries</th>'
        "<th>per run (recent)</th><th>tokens</th><th>cost</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        body,
    )
