"""The Celery application. Wiring only: configuration lives in settings (CELERY_*)."""

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agents_project.settings")

app = Celery("switchyard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def redact_secrets_in_logs(logger: logging.Logger, **kwargs: Any) -> None:
    """Celery replaces the root logger's handlers in a worker or beat: give them the same
    secret-redacting filter the web's handlers have."""
    from .logs import install

    install(logger.handlers)
