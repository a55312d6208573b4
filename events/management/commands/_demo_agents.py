"""The agents part of `make demo`: two provider sources and one recorded event per built-in
agent, each sent the way its sender would (Django skips this module as a command).

- ``demo-github`` (kind github) receives the recorded pull_request.opened webhook, signed with
  ``X-Hub-Signature-256``: the PR reviewer assesses it (the comment stays in the outcome).
- ``demo-stripe`` (kind stripe) receives the recorded invoice.payment_failed event, signed with
  ``Stripe-Signature``: payment recovery drafts an email, which waits in **Approvals**.
- The ``demo`` hmac source receives the recorded helpdesk ticket and monitoring alert:
  support triage (and its ``ticket.routed`` follow-up) and alert triage.
- The daily briefing is published last, as its schedule would at 07:00, so it sums up the rest.

Ids carry the feed's run id, so every run adds new events and a new approval. Without
``ANTHROPIC_API_KEY`` the agents run on the offline provider: keyword rules, labelled offline.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.models import Source
from events.webhooks import github, stripe

from ._local_state import read_secret_file, var_path, write_secret_file

FIXTURES = Path(settings.BASE_DIR) / "handlers" / "agents"
# slug -> (kind, how a secret of that kind looks)
PROVIDER_SOURCES: dict[str, tuple[str, Callable[[], str]]] = {
    "demo-github": ("github", lambda: secrets.token_hex(20)),
    "demo-stripe": ("stripe", lambda: "whsec_" + secrets.token_hex(24)),
}


def fixture(agent: str, name: str) -> Any:
    return json.loads((FIXTURES / agent / "fixtures" / name).read_text(encoding="utf-8"))


def provider_secret(slug: str) -> str:
    path = var_path(f"{slug}-secret")
    saved = read_secret_file(path)
    if saved is None:
        saved = PROVIDER_SOURCES[slug][1]()
        write_secret_file(path, saved)
    return saved


def ensure_provider_sources() -> list[str]:
    """Create or repair the demo's GitHub and Stripe sources; one line each to print."""
    lines = []
    for slug, (kind, _) in PROVIDER_SOURCES.items():
        secret = provider_secret(slug)
        with transaction.atomic():
            source, created = Source.objects.select_for_update().get_or_create(
                slug=slug,
                defaults={
                    "kind": kind,
                    "secrets": [secret],
                    "description": f"Recorded {kind} events from `make demo`",
                },
            )
            stale = (source.kind, source.enabled, list(source.secrets or [])[:1]) != (
                kind,
                True,
                [secret],
            )
            if not created and stale:
                source.kind, source.enabled, source.secrets = kind, True, [secret]
                source.save()
        state = "created" if created else ("updated" if stale else "up to date")
        lines.append(f"demo source {slug!r} {state} (kind {kind}, secret in var/{slug}-secret)")
    return lines


@dataclass(frozen=True)
class Request:
    """One signed POST to /hooks/<slug>."""

    label: str
    expect: str
    slug: str
    event_type: str
    event_id: str
    body: bytes
    headers: dict[str, str]


def github_pull_request(run_id: str) -> Request:
    payload = fixture("github_pr_review", "pull_request.opened.json")
    body = json.dumps(payload).encode()
    delivery = f"demo-{run_id}-pr"
    return Request(
        label="GitHub PR opened",
        expect="github.pr_review: risk + checklist",
        slug="demo-github",
        event_type="github.pull_request.opened",
        event_id=delivery,
        body=body,
        headers={
            github.EVENT_HEADER: "pull_request",
            github.DELIVERY_HEADER: delivery,
            github.SIGNATURE_HEADER: github.sign(provider_secret("demo-github"), body),
        },
    )


def stripe_payment_failed(run_id: str) -> Request:
    event = copy.deepcopy(fixture("payment_recovery", "invoice.payment_failed.json"))
    suffix = run_id.replace("-", "")
    event["id"] = f"evt_demo{suffix}"
    event["data"]["object"]["id"] = f"in_demo{suffix}"
    event["created"] = int(time.time())
    body = json.dumps(event).encode()
    signature = stripe.sign(provider_secret("demo-stripe"), body, int(time.time()))
    return Request(
        label="Stripe payment failed",
        expect="payments.recovery: email waits in Approvals",
        slug="demo-stripe",
        event_type="stripe.invoice.payment_failed",
        event_id=event["id"],
        body=body,
        headers={stripe.HEADER: signature},
    )


def hmac_envelopes(run_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, expect, envelope) for the demo hmac source."""
    ticket = copy.deepcopy(fixture("support_triage", "ticket.created.json"))
    alert = fixture("alert_triage", "alert.fired.json")
    return [
        (
            "helpdesk ticket",
            "support.triage: category, priority, ticket.routed",
            {
                "type": "ticket.created",
                "id": f"demo-{run_id}-ticket",
                "payload": ticket,
                # The requester: support triage remembers each one's tickets of the last day.
                "partition_key": ticket["ticket"]["requester"]["email"],
            },
        ),
        (
            "monitoring alert",
            "alerts.triage: severity, next step",
            {"type": "alert.fired", "id": f"demo-{run_id}-alert", "payload": alert},
        ),
    ]


def provider_requests(run_id: str) -> list[Request]:
    return [github_pull_request(run_id), stripe_payment_failed(run_id)]


def run_briefing(run_id: str) -> str:
    """Run the daily-briefing schedule now, as beat would at its time; a line to print."""
    from django_celery_beat.models import PeriodicTask

    from events.schedules import SCHEDULE_TASK
    from events.schedules.ticks import Tick, handle_tick

    name = "daily-briefing"
    periodic = PeriodicTask.objects.filter(name=name, task=SCHEDULE_TASK).first()
    if periodic is None:
        return f"no {name!r} schedule: run manage.py install_schedules"
    tick = handle_tick(
        Tick(
            name=name,
            due_at=timezone.now(),
            arguments=json.loads(periodic.kwargs or "{}"),
            key=f"{name}@demo:{run_id}",
        )
    )
    return f"schedule {name!r} run now (tick {tick.pk}: {tick.status}) -> briefing.daily"
