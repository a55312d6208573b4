from django.apps import AppConfig


class HandlersConfig(AppConfig):
    name = "handlers"
    verbose_name = "Agents"

    def ready(self) -> None:
        from . import approvals  # noqa: F401  (registers the handler that carries out approvals)
        from .providers import register
        from .registry import autodiscover

        autodiscover()
        register()
