"""How event payloads are stored: lz4-compressed on PostgreSQL (migration 0007)."""

from __future__ import annotations

import pytest
from django.db import connection

from events.models import Event


@pytest.mark.django_db
def test_event_payloads_are_compressed_with_lz4_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL storage setting")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attname = 'payload'",
            [Event._meta.db_table],
        )
        assert cursor.fetchone() == ("l",)
