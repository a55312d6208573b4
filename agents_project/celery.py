"""The Celery application. Wiring only: configuration lives in settings (CELERY_*)."""

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agents_project.settings")

app = Celery("switchyard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def redact_secrets_in_logs(logger: logging.Logger, **kwargs: Any) -> None:
    """Celery replaces the root logger's handlers in a worker or beat: give them the same
    secret-redacting filter the web's handlers have, and the JSON format when asked for."""
    from django.conf import settings

    from .logs import install, install_json

    install(logger.handlers)
    if settings.LOG_FORMAT == "json":
        install_json(logger.handlers)


@worker_init.connect
@beat_init.connect
def refuse_bad_settings(**kwargs: Any) -> None:
    """A worker or beat with a bad setting does not start: the same checks and words as
    ``manage.py check`` (agents_project/appsettings.py)."""
    from django.core.exceptions import ImproperlyConfigured

    from .appsettings import refuse_bad_settings

    try:
        refuse_bad_settings()
    except ImproperlyConfigured as exc:
        # Celery logs and ignores an exception from a signal handler; SystemExit stops it.
        raise SystemExit(f"switchyard: bad settings: {exc}") from None
