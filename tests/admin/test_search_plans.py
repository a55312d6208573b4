"""On PostgreSQL the lists' text search reads the trigram indexes of migration events/0015_search
instead of the table: every branch of the search's OR has an index, so with sequential scans
and plain index scans priced out, the planner still finds a plan, and it names the index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.db import connection
from django.db.models import QuerySet
from django.test import RequestFactory

from events.models import Delivery, Event, EventStatus, Source

from .helpers import make_event

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="trigram indexes exist on PostgreSQL only"
    ),
]


@pytest.fixture
def no_table_scans(data: dict[str, Any], hmac_source: Source) -> Iterator[None]:
    """A guest's name in one payload among a few, statistics gathered, and only bitmap scans
    left at a sane price (for this transaction: the test's own)."""
    event = make_event(hmac_source, "bk-7", "hotel.booking.created", EventStatus.PROCESSED, 5)
    event.payload = {"booking": {"guests": [{"name": "Margaret Hamilton"}]}}
    event.save(update_fields=["payload"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_event")
        cursor.execute("ANALYZE events_delivery")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    yield


def searched(model: type[Any], term: str) -> QuerySet[Any]:
    """The list's queryset after the admin's own search, as the change list runs it."""
    model_admin = admin.site.get_model_admin(model)
    request = RequestFactory().get("/")
    queryset, _ = model_admin.get_search_results(request, model.objects.all(), term)
    return queryset


def test_event_payload_search_reads_the_trigram_index(no_table_scans: None) -> None:
    plan = searched(Event, "Margaret").explain()

    assert "Bitmap Index Scan on event_payload_trgm" in plan
    assert "Seq Scan" not in plan
    assert [e.external_id for e in searched(Event, "Margaret")] == ["bk-7"]


def test_event_partition_key_search_reads_the_trigram_index(no_table_scans: None) -> None:
    plan = searched(Event, "guest-0042").explain()

    assert "Bitmap Index Scan on event_partition_trgm" in plan
    assert "Seq Scan" not in plan


def test_delivery_error_search_reads_the_trigram_index(
    no_table_scans: None, data: dict[str, Any]
) -> None:
    plan = searched(Delivery, "record is incomplete").explain()

    assert "Bitmap Index Scan on delivery_error_trgm" in plan
    assert "Bitmap Index Scan on delivery_handler_trgm" in plan
    assert "Seq Scan" not in plan
    assert sorted(d.pk for d in searched(Delivery, "record is incomplete")) == sorted(
        [data["dead_old"].pk, data["dead_new"].pk]
    )
