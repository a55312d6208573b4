"""manage.py create_source --slug S --kind K [--secret X ...] [kind options]: idempotent,
prints the URL."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.urls import reverse
from django.utils.text import slugify

from events import conf
from events.models import Source
from events.webhooks import KINDS, all_kind_names, get_kind
from events.webhooks.options import Option


def kind_options() -> dict[str, dict[str, Option]]:
    """Every kind's options by flag (``--slack-bot-user``), then by the kinds that take it."""
    by_flag: dict[str, dict[str, Option]] = {}
    for name, kind in KINDS.items():
        for option in kind.options:
            by_flag.setdefault(option.cli_flag, {})[name] = option
    return by_flag


def dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


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
        # Each kind's own options, from the kind (events/webhooks/options.py).
        for flag, owners in kind_options().items():
            text = "; ".join(f"{name}: {option.help}" for name, option in owners.items())
            # argparse formats help with %: a literal one is doubled.
            parser.add_argument(flag, dest=dest(flag), help=text.replace("%", "%%"))
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
        webhook_kind = get_kind(kind)
        for secret in secrets:
            problem = webhook_kind.secret_problem(secret) if webhook_kind else None
            if problem:
                raise CommandError(f"--secret: {problem}")
        kind_settings = {}
        for flag, owners in kind_options().items():
            value = opts.get(dest(flag))
            if value is None:
                continue
            option = owners.get(kind)
            if option is None:
                raise CommandError(f"{flag} is only for {' and '.join(owners)} sources")
            try:
                kind_settings[option.key] = option.from_command_line(value)
            except ValueError as exc:
                raise CommandError(f"{flag} {exc}") from None
        if webhook_kind is not None and not secrets:
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
                    "settings": kind_settings,
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
                if kind_settings:
                    source.settings = {**(source.settings or {}), **kind_settings}
                source.save()
        verb = "created" if created else "updated"
        self.stderr.write(f"source {slug} {verb} (kind {kind}, {len(source.secrets)} secret(s))")
        if get_kind(kind) is not None:
            self.stdout.write(conf.public_url() + reverse("hook", args=[slug]))
        elif kind == "stream":
            self.stdout.write(f"manage.py consume_stream STREAM --group GROUP --source {slug}")
        elif kind == "folder":
            self.stdout.write(f"manage.py watch_folder PATH --source {slug}")
        else:
            self.stdout.write(conf.public_url() + reverse("api-events"))
