"""Switchyard project wiring: settings, Celery app, URLs."""

from .celery import app as celery_app

__all__ = ("celery_app",)
