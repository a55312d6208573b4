"""manage.py create_api_token NAME: prints a new bearer token for the publish API, once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.models import ApiToken
from events.tokens import create_token


class Command(BaseCommand):
    help = "Create an API token. It is printed once; only its digest is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **opts: Any) -> None:
        name = opts["name"].strip()
        if not name or len(name) > 100:
            raise CommandError("NAME must be 1-100 characters")
        if ApiToken.objects.filter(name=name).exists():
            raise CommandError(f"a token named {name!r} exists; pick another name")
        _, token = create_token(name)
        self.stdout.write(token)
        self.stderr.write("Store it now: it cannot be shown again.")
