"""What the lists' search boxes find, kept to indexed lookups on big tables.

An event is found by its id (full, or the short id the lists show), its external id (exact),
or a piece of its type, partition key or payload text; a delivery (and a dead letter) by its
id, its event's id or external id, or a piece of its handler, error class or last error.

Pieces of text are matched with ``icontains``. On PostgreSQL each of those columns has a
pg_trgm index on ``UPPER(column)`` (migration events/0015_search), the very expression Django's
``icontains`` compares, and every other branch of the OR is an indexed equality, so PostgreSQL
answers with a bitmap of index scans instead of reading the table. On SQLite the same filters
scan. A trigram index cannot narrow a term of fewer than three characters, so such terms are
looked up as ids only.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.db.models.lookups import IContains

from ..models import Delivery, Event
from .common import id_prefix_q, parse_uuid

# The shortest term matched as a piece of text: a trigram index needs three characters.
MIN_TEXT = 3
# Events sharing one external id across sources that a delivery search looks at.
MAX_EXTERNAL_MATCHES = 100

EVENT_HELP = (
    "Event id (full, or its first 8 or more characters), external id (exact), or at least "
    f"{MIN_TEXT} characters of its type, partition key or payload (any case)."
)
DELIVERY_HELP = (
    "Delivery id, event id (full, or its first 8 or more characters), the event's external id "
    f"(exact), or at least {MIN_TEXT} characters of the handler, error class or last error "
    "(any case)."
)


def payload_contains(term: str) -> Q:
    """The payload's JSON text contains ``term``, in any case (keys and values alike)."""
    return Q(IContains(Cast("payload", output_field=TextField()), term))


def search_events(queryset: QuerySet[Event], term: str) -> QuerySet[Event]:
    event_id = parse_uuid(term)
    if event_id is not None:
        # Senders' ids are often UUIDs too.
        return queryset.filter(Q(id=event_id) | Q(external_id=term))
    condition = Q(external_id=term)
    prefix = id_prefix_q("id", term)
    if prefix is not None:
        # The short id the lists show.
        condition |= prefix
    if len(term) >= MIN_TEXT:
        condition |= (
            Q(type__icontains=term) | Q(partition_key__icontains=term) | payload_contains(term)
        )
    return queryset.filter(condition)


def search_deliveries(queryset: QuerySet[Delivery], term: str) -> QuerySet[Delivery]:
    event_id = parse_uuid(term)
    if event_id is not None:
        return queryset.filter(event_id=event_id)
    # Looked up first, so the OR below stays a set of indexed lookups on one table.
    by_external_id = list(
        Event.objects.filter(external_id=term)
        .order_by()
        .values_list("id", flat=True)[:MAX_EXTERNAL_MATCHES]
    )
    condition = Q(event_id__in=by_external_id)
    if term.isascii() and term.isdigit() and len(term) <= 18:
        condition |= Q(id=int(term))
    prefix = id_prefix_q("event_id", term)
    if prefix is not None:
        condition |= prefix
    if len(term) >= MIN_TEXT:
        condition |= (
            Q(handler__icontains=term)
            | Q(error_class__icontains=term)
            | Q(last_error__icontains=term)
        )
    return queryset.filter(condition)
