"""manage.py create_api_token NAME [--source SLUG ...] [--scope publish,read]: prints a new
bearer token for the publish API, once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.models import ApiToken, Source
from events.tokens import DEFAULT_SOURCE, SCOPES, create_token


class Command(BaseCommand):
    help = (
        "Create an API token. It is printed once; only its digest is stored. By default it may "
        "publish into the default api source and read nothing back."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--source",
            action="append",
            dest="sources",
            metavar="SLUG",
            help=f"an api source it may publish into (repeat for more; default {DEFAULT_SOURCE})",
        )
        parser.add_argument(
            "--all-sources",
            action="store_true",
            help="every api source, and reading events of every source",
        )
        parser.add_argument(
            "--scope",
            default="publish",
            help="what it may do, comma-separated: publish, read (default publish)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        name = opts["name"].strip()
        if not name or len(name) > 100:
            raise CommandError("NAME must be 1-100 characters")
        if ApiToken.objects.filter(name=name).exists():
            raise CommandError(f"a token named {name!r} exists; pick another name")
        scopes = [part.strip() for part in opts["scope"].split(",") if part.strip()]
        if not scopes or set(scopes) - set(SCOPES):
            raise CommandError(f"--scope {opts['scope']!r}: name one or both of publish, read")
        sources: list[str] = opts["sources"] or []
        if sources and opts["all_sources"]:
            raise CommandError("give --source or --all-sources, not both")
        for slug in sources:
            kind = Source.objects.filter(slug=slug).values_list("kind", flat=True).first()
            if kind is None and slug != DEFAULT_SOURCE:
                raise CommandError(f"--source {slug!r}: no such source")
            if kind is not None and kind != "api":
                raise CommandError(
                    f"--source {slug!r} is a {kind} source; a token publishes into api sources only"
                )
        record, token = create_token(
            name,
            sources=sources or [DEFAULT_SOURCE],
            all_sources=opts["all_sources"],
            scopes=scopes,
        )
        self.stdout.write(token)
        where = "every api source" if record.all_sources else ", ".join(record.sources)
        self.stderr.write(
            f"Store it now: it cannot be shown again. It may {' and '.join(record.scopes)} "
            f"({where})."
        )
