"""The demo's database, SQLite, runs the same delivery path as PostgreSQL.

The delivery hot path is plain SQL (events/rows.py, events/status.py) and the pool is
PostgreSQL's only, so this runs a delivery's whole life on a fresh SQLite file in a process of
its own (the rest of the suite is bound to PostgreSQL): claim, the handler, success; a failure
that retries; the event's derived status each time; and a handler's state, first written,
updated, and run again after another write came first.
"""

from __future__ import annotations

from pathlib import Path

from tests.sqlite_script import run_on_sqlite

SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from events import dispatch
from events import publish as publish_module

dispatch.enqueue = lambda jobs: None  # no broker here: execute() is called directly
from events.delivery import execute
from events.models import Attempt, Delivery, Event, Source
from django.db import connection

source = Source.objects.create(slug="lite", kind="api")
ok = publish_module.publish(source=source, type="test.noop", payload={"n": 1}).event
flaky = publish_module.publish(source=source, type="test.flaky", payload={}).event
ok_outcome = execute(Delivery.objects.get(event=ok).id)
flaky_outcome = execute(Delivery.objects.get(event=flaky).id)
d = Delivery.objects.get(event=flaky)
print(json.dumps({
    "vendor": connection.vendor,
    "pool": bool(connection.settings_dict["OPTIONS"].get("pool")),
    "ok": [ok_outcome.status, Event.objects.get(id=ok.id).status],
    "flaky": [flaky_outcome.status, Event.objects.get(id=flaky.id).status, d.attempts],
    "attempts": sorted(Attempt.objects.values_list("status", flat=True)),
}))
"""


def test_a_delivery_runs_its_whole_path_on_sqlite(tmp_path: Path) -> None:
    found = run_on_sqlite(SCRIPT, tmp_path)
    assert found == {
        "vendor": "sqlite",
        "pool": False,
        "ok": ["succeeded", "processed"],
        "flaky": ["retrying", "failed", 1],
        "attempts": ["failed", "succeeded"],
    }


STATE_SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from events import dispatch
from events import publish as publish_module

dispatch.enqueue = lambda jobs: None
from django.db.models import F
from events.delivery import execute
from events.models import Delivery, HandlerState, Source
from tests.testapp import state_handlers

source = Source.objects.create(slug="lite", kind="api")

def count():
    event = publish_module.publish(
        source=source, type="test.state.count", payload={}, partition_key="k"
    ).event
    delivery = Delivery.objects.get(event=event)
    execute(delivery.id)
    delivery.refresh_from_db()
    return delivery.outcome["count"]

def someone_writes():
    HandlerState.objects.filter(handler="test.state.count").update(
        data={"count": 10}, version=F("version") + 1
    )

first, second = count(), count()
state_handlers.BETWEEN_READ_AND_WRITE.append(someone_writes)
third = count()
row = HandlerState.objects.get(handler="test.state.count", partition_key="k")
print(json.dumps({"counts": [first, second, third], "state": [row.data, row.version]}))
"""


def test_state_is_written_and_compared_on_sqlite(tmp_path: Path) -> None:
    found = run_on_sqlite(STATE_SCRIPT, tmp_path)
    assert found == {"counts": [1, 2, 11], "state": [{"count": 11}, 4]}
