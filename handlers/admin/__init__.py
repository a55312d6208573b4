"""The agents' admin: approvals, usage, budgets and model overrides, listed after the
pipeline's models; on the pipeline's delivery pages, an agent's trace and its token and cost
totals; and on the dashboard, tokens and cost per agent per day (added through
events.extensions)."""

from events import extensions

from .approvals import ApprovalAdmin
from .budgets import AgentBudgetAdmin
from .dashboard import PANEL as DASHBOARD_PANEL
from .overrides import AgentConfigAdmin
from .steps import TOTALS_COLUMNS, TRACE_PANEL
from .usage import AgentUsageAdmin

extensions.add_delivery_panel(TRACE_PANEL)
extensions.add_delivery_columns(TOTALS_COLUMNS)
extensions.add_dashboard_panel(DASHBOARD_PANEL)
extensions.add_admin_order("handlers", ("Approval", "AgentUsage", "AgentBudget", "AgentConfig"))

__all__ = ["AgentBudgetAdmin", "AgentConfigAdmin", "AgentUsageAdmin", "ApprovalAdmin"]
