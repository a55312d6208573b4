"""The operator's console: the pipeline's records (read-only, with requeue actions) and the
configuration (sources, routes, API tokens).

django-celery-beat and django-celery-results register their own admins for schedules and task
results; this package only brands the shared site.
"""

from django.contrib import admin

from .config import ApiTokenAdmin, RouteAdmin, SourceAdmin
from .dead_letters import DeadLetterAdmin
from .pipeline import DeliveryAdmin, EventAdmin

admin.site.site_header = "Switchyard"
admin.site.site_title = "Switchyard"
admin.site.index_title = "Operations"

__all__ = [
    "ApiTokenAdmin",
    "DeadLetterAdmin",
    "DeliveryAdmin",
    "EventAdmin",
    "RouteAdmin",
    "SourceAdmin",
]
