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
from events.webhooks import all_kind_names, get_kind
from events.webhooks.hmac import TIMESTAMP_SETTING
from events.webhooks.slack import BOT_USER_SETTING
from events.webhooks.standard_webhooks import TYPE_PREFIX_SETTING

# Options that set one key of Source.settings, and the kind they belong to.
KIND_SETTINGS = {
    "slack_bot_user": ("slack", BOT_USER_SETTING),
    "type_prefix": ("standard_webhooks", TYPE_PREFIX_SETTING),
    "timestamp_header": ("hmac", TIMESTAMP_SETTING),
}


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
            "--slack-bot-user",
            help="slack: the bot's user id (U...); its messages are stored as ignored",
        )
        parser.add_argument(
            "--type-prefix",
            help="standard_webhooks: first part of the event types (default standard_webhooks)",
        )
        parser.add_argument(
            "--timestamp-header",
            help="hmac: the header carrying the signed Unix time (the sender signs "
            "'{timestamp}.{body}'; requests over 300 s off are refused)",
        )
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
        for option, (option_kind, key) in KIND_SETTINGS.items():
            value = opts.get(option)
            if value is None:
                continue
            if option_kind != kind:
                flag = "--" + option.replace("_", "-")
                raise CommandError(f"{flag} is only for {option_kind} sources")
            if not value.strip():
                raise CommandError(f"--{option.replace('_', '-')} must not be empty")
            kind_settings[key] = value.strip()
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
