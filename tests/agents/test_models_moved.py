"""The agents' models moved from the events app to handlers (handlers.0002_agent_models): a
database made before the move keeps its rows, and the permissions granted on them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from handlers.models import AgentBudget, AgentConfig, Approval, Step

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("events", "0010_lease_holder"), ("handlers", "0001_initial")]
MOVED = ("step", "agentusage", "agentbudget", "approval", "agentconfig")


def test_rows_and_permissions_made_before_the_move_are_kept() -> None:
    # given a database as it was before the move, with a row in each table and a group
    # allowed to decide approvals
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    # Content types are made after migrate; a database from before the move has the events
    # app's only.
    ContentType.objects.filter(app_label="handlers", model__in=MOVED).delete()
    approval_type, _ = ContentType.objects.get_or_create(app_label="events", model="approval")
    decide, _ = Permission.objects.get_or_create(
        content_type=approval_type, codename="change_approval", defaults={"name": "Can change"}
    )
    operators = Group.objects.create(name="operators")
    operators.permissions.add(decide)

    source = old.get_model("events", "Source").objects.create(slug="before", kind="api")
    event = old.get_model("events", "Event").objects.create(
        source=source, external_id="e1", type="t", payload={}
    )
    delivery = old.get_model("events", "Delivery").objects.create(event=event, handler="h.agent")
    attempt = old.get_model("events", "Attempt").objects.create(delivery=delivery, number=1)
    old.get_model("events", "Step").objects.create(
        attempt=attempt, number=1, kind="llm", name="claude-x", input_tokens=7
    )
    old.get_model("events", "Approval").objects.create(
        delivery=delivery, agent="h.agent", tool="refund", input={"n": 1}, idempotency_key="k1"
    )
    old.get_model("events", "AgentBudget").objects.create(handler="h.agent", daily_token_limit=9)
    old.get_model("events", "AgentConfig").objects.create(handler="h.agent", model="claude-y")

    # when the database is migrated to today's models
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    # then every row is read through the handlers app's models, from its renamed tables
    assert Step._meta.db_table == "handlers_step"
    assert Step.objects.get().input_tokens == 7
    assert Step.objects.get().attempt_id == attempt.pk
    assert Approval.objects.get().idempotency_key == "k1"
    assert AgentBudget.objects.get().daily_token_limit == 9
    assert AgentConfig.objects.get().model == "claude-y"
    # and the group may still decide approvals, now the handlers app's
    kept = Group.objects.get(name="operators").permissions.get()
    assert (kept.content_type.app_label, kept.codename) == ("handlers", "change_approval")
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
    assert "events_step" not in tables
    assert {"handlers_step", "handlers_approval"} <= tables
