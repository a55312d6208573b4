"""The operator's console: the pipeline's records (read-only, with requeue actions) and the
configuration (sources, routes, API tokens). Other apps add their own admins, and panels and
columns on the delivery pages through events.extensions.

django-celery-beat and django-celery-results register their own admins for schedules and task
results; ``site.configure`` brands the shared site, orders its index and trims those admins.
"""

from django.contrib import admin

from .config import RouteAdmin, SourceAdmin
from .dead_letters import DeadLetterAdmin
from .pipeline import DeliveryAdmin, EventAdmin
from .replays import ReplayAdmin
from .requests import RejectedRequestAdmin
from .resources import ResourceAdmin
from .schedule_ticks import ScheduleTickAdmin
from .schedules import ScheduleAdmin
from .site import configure
from .state import HandlerStateAdmin
from .tokens import ApiTokenAdmin

configure(admin.site)

__all__ = [
    "ApiTokenAdmin",
    "DeadLetterAdmin",
    "DeliveryAdmin",
    "EventAdmin",
    "HandlerStateAdmin",
    "RejectedRequestAdmin",
    "ReplayAdmin",
    "ResourceAdmin",
    "RouteAdmin",
    "ScheduleAdmin",
    "ScheduleTickAdmin",
    "SourceAdmin",
]
