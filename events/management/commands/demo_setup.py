"""manage.py demo_setup: the "demo" webhook source (kind hmac) for `make demo`, the GitHub and
Stripe sources the built-in agents' recorded events come through, and the default schedules
(install_schedules). Idempotent.

Its signing secret is generated once into var/demo-source-secret (mode 0600) and reused, so
the source keeps the same secret however often the demo starts.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.urls import reverse

from events import conf
from events.models import Source

from ._demo_agents import ensure_provider_sources
from ._local_state import (
    DEMO_SECRET_FILE,
    display_path,
    read_secret_file,
    var_path,
    write_secret_file,
)

DEMO_SLUG = "demo"
DEMO_KIND = "hmac"
DEMO_DESCRIPTION = "Sample events from `make demo` (manage.py demo_feed)"


def demo_secret() -> tuple[str, bool]:
    """The demo source's secret and whether it was generated just now."""
    path = var_path(DEMO_SECRET_FILE)
    saved = read_secret_file(path)
    if saved is not None:
        return saved, False
    secret = secrets.token_hex(32)
    write_secret_file(path, secret)
    return secret, True


class Command(BaseCommand):
    help = "Create or update the 'demo' hmac webhook source; its secret lives in var/."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url", default=None, help="printed endpoint URL base (default: public URL)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        secret, generated = demo_secret()
        path = display_path(var_path(DEMO_SECRET_FILE))
        if generated:
            self.stdout.write(f"generated the demo source's signing secret in {path}")
        with transaction.atomic():
            source, created = Source.objects.select_for_update().get_or_create(
                slug=DEMO_SLUG,
                defaults={
                    "kind": DEMO_KIND,
                    "secrets": [secret],
                    "description": DEMO_DESCRIPTION,
                    "enabled": True,
                },
            )
            changed = False
            if not created:
                if source.kind != DEMO_KIND or not source.enabled:
                    source.kind, source.enabled, changed = DEMO_KIND, True, True
                if list(source.secrets or [])[:1] != [secret]:
                    source.secrets, changed = [secret], True
                if changed:
                    source.save()
        state = "created" if created else ("updated" if changed else "up to date")
        base = (opts["base_url"] or conf.public_url()).rstrip("/")
        url = base + reverse("hook", args=[DEMO_SLUG])
        self.stdout.write(
            f"demo source {DEMO_SLUG!r} {state}: POST {url} (kind {DEMO_KIND}, "
            f"signing secret in {path})"
        )
        # The sources the built-in agents' recorded events arrive through (demo_feed).
        for line in ensure_provider_sources():
            self.stdout.write(line)
        # The default schedules (daily briefing, hourly metrics check), so beat has work.
        call_command("install_schedules", stdout=self.stdout)
