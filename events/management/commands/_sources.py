"""The source a long-running publisher (consume_stream, watch_folder) writes into: it must
exist, be enabled and be of the publisher's own kind (Django skips this module as a command)."""

from __future__ import annotations

from django.core.management.base import CommandError

from events.models import Source


def source_of_kind(slug: str, kind: str, *, why_only: str) -> Source:
    """The enabled ``kind`` source ``slug``; a CommandError saying what to do otherwise."""
    source = Source.objects.filter(slug=slug).first()
    if source is None:
        raise CommandError(
            f"source {slug!r} does not exist "
            f"(create it: manage.py create_source --slug {slug} --kind {kind})"
        )
    if not source.enabled:
        raise CommandError(f"source {slug!r} is disabled")
    if source.kind != kind:
        raise CommandError(f"source {slug!r} is a {source.kind} source; {why_only}")
    return source
