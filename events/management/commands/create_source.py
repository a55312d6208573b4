"""manage.py create_source --slug S --kind K [--secret X ...]: idempotent, prints the URL."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.urls import reverse
from django.utils.text import slugify

from events.models import Source
from events.webhooks import all_kind_names, get_kind


class Command(BaseCommand):
    help = (
        "Create a source, or update its kind and secrets if it exists (safe to run again from "
        "provisioning scripts). Prints the endpoint URL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True)
        parser.add_argument("--kind", required=True, help=f"one of: {', '.join(all_kind_names())}")
        parser.add_argument(
            "--secret",
            action="append",
            default=[],
            help="signing secret; give it twice during a rotation (newest first)",
        )
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--disabled", action="store_true", help="create it disabled (or disable it)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        slug = opts["slug"]
        if not slug or slugify(slug) != slug or len(slug) > 64:
            raise CommandError(
                f"--slug {slug!r} must be 1-64 lowercase letters, digits, dashes or underscores"
            )
        kind = opts["kind"]
        if kind not in all_kind_names():
            raise CommandError(f"--kind {kind!r} is not one of: {', '.join(all_kind_names())}")
        secrets = opts["secret"]
        if any(not s.strip() for s in secrets):
            raise CommandError("--secret must not be empty")
        if get_kind(kind) is not None and not secrets:
            existing = Source.objects.filter(slug=slug).first()
            if existing is None or not existing.secrets:
                raise CommandError(f"a {kind} source needs at least one --secret")
        with transaction.atomic():
            source, created = Source.objects.select_for_update().get_or_create(
                slug=slug,
                defaults={
                    "kind": kind,
                    "secrets": secrets,
                    "description": opts["description"],
                    "enabled": not opts["disabled"],
                },
            )
            if not created:
                source.kind = kind
                if opts["disabled"]:
                    source.enabled = False
                if secrets:
                    source.secrets = secrets
                if opts["description"]:
                    source.description = opts["description"]
                source.save()
        verb = "created" if created else "updated"
        self.stderr.write(f"source {slug} {verb} (kind {kind}, {len(source.secrets)} secret(s))")
        if get_kind(kind) is not None:
            self.stdout.write(settings.SWITCHYARD_PUBLIC_URL + reverse("hook", args=[slug]))
        else:
            self.stdout.write(settings.SWITCHYARD_PUBLIC_URL + reverse("api-events"))
