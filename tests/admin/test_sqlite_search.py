"""The demo's database, SQLite: migration events/0015_search skips its PostgreSQL-only trigram
indexes, and the lists' search and time-range filter work with plain LIKE scans.

The rest of the suite is bound to PostgreSQL, so this runs the admin in a process of its own
on a fresh SQLite file, like tests/pipeline/test_sqlite_pipeline.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.sqlite_script import run_on_sqlite

SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from datetime import UTC, datetime
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import setup_test_environment
from events.models import Delivery, Event, Source

source = Source.objects.create(slug="lite", kind="api")
booking = Event.objects.create(
    source=source, external_id="bk-7", type="hotel.booking.created", partition_key="guest-0042",
    payload={"booking": {"guests": [{"name": "Margaret Hamilton"}]}},
    received_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
)
other = Event.objects.create(
    source=source, external_id="bk-8", type="hotel.booking.created", payload={"guest": "Ada"},
    received_at=datetime(2025, 3, 2, 12, 0, tzinfo=UTC),
)
Delivery.objects.create(
    event=booking, handler="demo.notify_guest", status="dead_lettered",
    last_error="KeyError: 'Margaret' is missing from the guest list",
)
setup_test_environment()
client = Client()
client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))

def listed(url):
    rows = client.get(url).context["cl"].result_list
    return [getattr(row, "external_id", None) or row.handler for row in rows]

with connection.cursor() as cursor:
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%trgm'")
    trigram_indexes = [row[0] for row in cursor.fetchall()]
print(json.dumps({
    "vendor": connection.vendor,
    "trigram_indexes": trigram_indexes,
    "payload": listed("/admin/events/event/?q=MARGARET"),
    "partition_key": listed("/admin/events/event/?q=guest-0042"),
    "range": listed("/admin/events/event/?received_at__from=2025-03-02"),
    "dead_letter_error": listed("/admin/events/deadletter/?q=from+the+guest+list"),
}))
"""


def test_search_and_time_range_work_on_sqlite(tmp_path: Path) -> None:
    found = run_on_sqlite(SCRIPT, tmp_path)
    assert found == {
        "vendor": "sqlite",
        "trigram_indexes": [],
        "payload": ["bk-7"],
        "partition_key": ["bk-7"],
        "range": ["bk-8"],
        "dead_letter_error": ["demo.notify_guest"],
    }
