from django.apps import AppConfig


class HandlersConfig(AppConfig):
    name = "handlers"
    verbose_name = "Handlers"

    def ready(self) -> None:
        from .registry import autodiscover

        autodiscover()
