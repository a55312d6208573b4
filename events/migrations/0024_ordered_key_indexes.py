"""The indexes an ordered route's key order reads (events.transitions.flow._earlier and wake):
the route's open deliveries, and the events of a key by receipt.

Declared in the models (so SQLite, where the demo runs, has them too, and keeps them when it
rebuilds a table), but built CONCURRENTLY on PostgreSQL, so a large events table keeps taking
webhooks while they build; hence a migration of its own, not atomic. A build that failed
halfway leaves an invalid index: it is dropped and built again.
"""

from django.db import migrations, models

INDEXES = {
    "delivery": models.Index(
        condition=models.Q(status__in=["pending", "retrying", "running", "dead_lettered"]),
        fields=["route"],
        name="delivery_route_open",
    ),
    "event": models.Index(
        condition=~models.Q(partition_key=""),
        fields=["partition_key", "received_at"],
        name="event_key_recv",
    ),
}


def add_indexes(apps, schema_editor):
    concurrently = schema_editor.connection.vendor == "postgresql"
    for model_name, index in INDEXES.items():
        model = apps.get_model("events", model_name)
        if concurrently:
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")
            schema_editor.add_index(model, index, concurrently=True)
        else:
            schema_editor.add_index(model, index)


def remove_indexes(apps, schema_editor):
    concurrently = schema_editor.connection.vendor == "postgresql"
    for model_name, index in INDEXES.items():
        model = apps.get_model("events", model_name)
        if concurrently:
            schema_editor.remove_index(model, index, concurrently=True)
        else:
            schema_editor.remove_index(model, index)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("events", "0023_route_source_caps")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name=name, index=index) for name, index in INDEXES.items()
            ],
            database_operations=[
                migrations.RunPython(add_indexes, remove_indexes, elidable=False),
            ],
        ),
    ]
