from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Data setup after migrate (like contenttypes' permissions): declared handler
        # subscriptions become Route rows. Not control flow; sync_routes does the same.
        post_migrate.connect(_sync_routes_after_migrate, sender=self)
        # The handlers the pipeline registers itself (stream.rejected).
        # Each worker says it is alive, and which queues it consumes (events.liveness).
        from celery.signals import worker_ready

        from . import system_handlers  # noqa: F401
        from .liveness import on_worker_ready

        worker_ready.connect(on_worker_ready, weak=False)


def _sync_routes_after_migrate(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    from .routing import sync_routes

    sync_routes(using=using)
