"""The operator's console: the pipeline's records (read-only, with requeue actions) and the
configuration (sources, routes, API tokens).

django-celery-beat and django-celery-results register their own admins for schedules and task
results; ``site.configure`` brands the shared site, orders its index and trims those admins.
"""

from django.contrib import admin

from .agent_models import AgentConfigAdmin
from .approvals import ApprovalAdmin
from .budgets import AgentBudgetAdmin
from .config import RouteAdmin, SourceAdmin
from .dead_letters import DeadLetterAdmin
from .pipeline import DeliveryAdmin, EventAdmin
from .schedules import ScheduleAdmin, ScheduleTickAdmin
from .site import configure
from .tokens import ApiTokenAdmin
from .usage import AgentUsageAdmin

configure(admin.site)

__all__ = [
    "AgentBudgetAdmin",
    "AgentConfigAdmin",
    "AgentUsageAdmin",
    "ApiTokenAdmin",
    "ApprovalAdmin",
    "DeadLetterAdmin",
    "DeliveryAdmin",
    "EventAdmin",
    "RouteAdmin",
    "ScheduleAdmin",
    "ScheduleTickAdmin",
    "SourceAdmin",
]
