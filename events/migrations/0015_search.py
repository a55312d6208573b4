"""Trigram indexes for the admin's search (events.admin.search), on PostgreSQL only.

The search matches substrings with Django's ``icontains``, which PostgreSQL runs as
``UPPER(column::text) LIKE UPPER('%term%')``. A pg_trgm GIN index on the same ``UPPER(...)``
expression serves that LIKE, so finding "Margaret" inside a payload reads the index instead of
every row. The indexes live here and not in the models' Meta: SQLite has no GIN, and a table
SQLite rebuilds (any later AlterField on it) recreates every index the model declares.

The indexes are built CONCURRENTLY (so the migration is not atomic): a large events table keeps
taking webhooks while they build. CREATE EXTENSION pg_trgm needs a role allowed to create
extensions in the database (pg_trgm is a trusted extension since PostgreSQL 13, so the
database's owner may). On SQLite this migration does nothing and search scans.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

# name: (table, expression). Each expression must stay what events.admin.search filters on
# (tests/admin/test_search_plans.py checks PostgreSQL picks them). Plain SQL: Django renders
# OpClass inside an index expression only with django.contrib.postgres installed.
INDEXES = {
    "event_payload_trgm": ("events_event", "UPPER(payload::text)"),
    "event_partition_trgm": ("events_event", "UPPER(partition_key)"),
    "event_type_trgm": ("events_event", "UPPER(type)"),
    "delivery_handler_trgm": ("events_delivery", "UPPER(handler)"),
    "delivery_errclass_trgm": ("events_delivery", "UPPER(error_class)"),
    "delivery_error_trgm": ("events_delivery", "UPPER(last_error)"),
}


def add_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, expression) in INDEXES.items():
        # A build that failed halfway leaves an invalid index behind: start afresh.
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY {name} ON {table} USING gin ({expression} gin_trgm_ops)"
        )


def remove_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("events", "0014_replays")]

    operations = [
        # Skipped on other databases by Django itself.
        TrigramExtension(),
        migrations.RunPython(add_indexes, remove_indexes, elidable=False),
    ]
