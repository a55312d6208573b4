"""Event payloads compressed with lz4 instead of pglz on PostgreSQL 14+.

A webhook payload is often tens of KB (GitHub's pull_request is about 28 KB), so PostgreSQL
compresses it (TOAST) on every INSERT. pglz cost about 0.9 ms of backend CPU per 28 KB event
on the benchmark machine, lz4 about 0.5 ms, and its result was smaller (docs/benchmarks.md).
Only rows written afterwards are affected. Skipped on SQLite, before PostgreSQL 14, and on a
server built without lz4.
"""

from django.db import migrations


def lz4_payloads(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
            "AND 'lz4' = ANY(enumvals)"
        )
        if cursor.fetchone() is None:
            return  # built without lz4
        cursor.execute("ALTER TABLE events_event ALTER COLUMN payload SET COMPRESSION lz4")


def pglz_payloads(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE events_event ALTER COLUMN payload SET COMPRESSION pglz")


class Migration(migrations.Migration):
    dependencies = [("events", "0006_schedules")]

    operations = [migrations.RunPython(lz4_payloads, pglz_payloads)]
