"""The demo's database, SQLite, runs the same delivery path as PostgreSQL.

The delivery hot path is plain SQL (events/rows.py, events/status.py) and the pool is
PostgreSQL's only, so this runs a delivery's whole life on a fresh SQLite file in a process of
its own (the rest of the suite is bound to PostgreSQL): claim, the handler, success; a failure
that retries; the event's derived status each time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

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
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path}/demo.sqlite3",
        "SWITCHYARD_VAR_DIR": str(tmp_path / "var"),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "vendor": "sqlite",
        "pool": False,
        "ok": ["succeeded", "processed"],
        "flaky": ["retrying", "failed", 1],
        "attempts": ["failed", "succeeded"],
    }
