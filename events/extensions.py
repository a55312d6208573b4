"""What other apps add to the pipeline. They register from their ``AppConfig.ready()``; the
pipeline calls what is registered and knows nothing of what it is.

- **Context providers** fill in a handler's context for one run: the agents' trace recorder,
  budget check, approvals and model override come from ``handlers.providers``.
- **Delivery panels and columns**: what the delivery admin shows beyond the pipeline's own
  fields (an agent's trace and its token and cost totals).
- **Retention**: events another app still needs (an approval waiting for a decision keeps its
  event), and that app's own rows pruned by age with the pipeline's history.
- **Admin order**: where an app's models come on the admin index, after the pipeline's.
- **Dashboard panels**: what the admin's dashboard (events.dashboard) shows after the
  pipeline's own figures (the agents' tokens and cost per day).
- **Run costs**: what a handler's recent runs cost on average, for a replay's dry run (the
  agents' tokens and cost, from their traced steps).

Registering the same thing twice registers it once, so a ``ready()`` that runs again is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from handlers.context import HandlerContext

if TYPE_CHECKING:
    from django.db.models import Q, QuerySet
    from django.http import HttpRequest

    from .models import Delivery
    from .redaction import Sanitiser


# --- Context providers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One attempt of one delivery, as a context provider sees it."""

    delivery: Delivery  # with its event, the event's source and its route loaded
    number: int  # the attempt's number, from 1
    attempt_id: int | None  # the Attempt row's id, when the claim knows it
    clean: Sanitiser  # this run's redaction of known secrets: use it on whatever is stored


ContextProvider = Callable[[Run, HandlerContext], None]
_providers: list[ContextProvider] = []


def add_context_provider(provider: ContextProvider) -> None:
    """Call ``provider(run, ctx)`` for every run, after the pipeline has built ``ctx``.

    A provider sets the context's optional callbacks (``record_step``, ``budget_check``, ...).
    Each callback runs while the handler runs, outside any transaction: it should take a
    database connection only for its own short read or write and give it back when it returns
    (``agents_project.db.releasing``), since a handler may wait on a model for seconds.
    """
    if provider not in _providers:
        _providers.append(provider)


def provide(run: Run, ctx: HandlerContext) -> None:
    for provider in _providers:
        provider(run, ctx)


# --- The delivery admin ---------------------------------------------------------------------

# An admin display function: called with the delivery, returns what the cell or field shows.
Display = Callable[["Delivery"], Any]


@dataclass(frozen=True)
class DeliveryPanel:
    """A fieldset on the delivery's page, shown when ``shown(delivery)`` says so."""

    title: str
    fields: tuple[Display, ...]
    shown: Callable[[Delivery], bool]


@dataclass(frozen=True)
class DeliveryColumns:
    """Columns on the deliveries list. ``prepare`` is called once per page with its rows,
    before any cell is drawn, so a column's figures come from one query for the page."""

    columns: tuple[Display, ...]
    prepare: Callable[[list[Delivery]], None] | None = None


_panels: list[DeliveryPanel] = []
_columns: list[DeliveryColumns] = []


def add_delivery_panel(panel: DeliveryPanel) -> None:
    if panel not in _panels:
        _panels.append(panel)


def add_delivery_columns(columns: DeliveryColumns) -> None:
    if columns not in _columns:
        _columns.append(columns)


def delivery_panels() -> list[DeliveryPanel]:
    return list(_panels)


def delivery_columns() -> list[DeliveryColumns]:
    return list(_columns)


# --- Retention ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pruned:
    """Rows an app prunes with the pipeline's history: ``older_than(cutoff)`` is what goes."""

    label: str  # as the prune report names them: "write-tool keys"
    older_than: Callable[[datetime], QuerySet[Any]]


_holds: list[Callable[[], Q]] = []
_pruned: list[Pruned] = []


def add_retention_hold(hold: Callable[[], Q]) -> None:
    """``hold()`` is a filter on Event: the events it matches are never pruned."""
    if hold not in _holds:
        _holds.append(hold)


def add_pruned(pruned: Pruned) -> None:
    if pruned not in _pruned:
        _pruned.append(pruned)


def retention_holds() -> list[Q]:
    return [hold() for hold in _holds]


def pruned() -> list[Pruned]:
    return list(_pruned)


# --- The admin index ------------------------------------------------------------------------

_admin_order: dict[str, tuple[str, ...]] = {}


def add_admin_order(app_label: str, models: Sequence[str]) -> None:
    """List ``app_label`` on the admin index after the pipeline's app and the apps registered
    before it, its models (by object name) in this order."""
    _admin_order.setdefault(app_label, tuple(models))


def admin_order() -> dict[str, tuple[str, ...]]:
    return dict(_admin_order)


# --- The dashboard --------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardPanel:
    """A panel on the admin's dashboard, after the pipeline's own.

    ``context(request, now)`` returns the context ``template`` is rendered with, or None to
    leave the panel out (for a user who may not see what it shows). It runs on every load of
    the dashboard, which refreshes itself: a few cheap queries, on indexed columns.
    """

    title: str
    template: str
    context: Callable[[HttpRequest, datetime], dict[str, Any] | None]


_dashboard_panels: list[DashboardPanel] = []


def add_dashboard_panel(panel: DashboardPanel) -> None:
    if panel not in _dashboard_panels:
        _dashboard_panels.append(panel)


def dashboard_panels() -> list[DashboardPanel]:
    return list(_dashboard_panels)


# --- Run costs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCost:
    """A handler's recent runs, averaged: what one more delivery of it may spend."""

    runs: int  # how many recent runs the averages are over (at least 1)
    tokens: int  # input + output tokens per run
    cost_usd: Decimal  # per run


# Given handler names, answers for those it knows: a RunCost, or None for one it knows that
# has no recent runs. A handler no estimator answers for spends no tokens (not an agent).
CostEstimator = Callable[[Sequence[str]], "dict[str, RunCost | None]"]
_estimators: list[CostEstimator] = []


def add_cost_estimator(estimator: CostEstimator) -> None:
    if estimator not in _estimators:
        _estimators.append(estimator)


def run_costs(handlers: Sequence[str]) -> dict[str, RunCost | None]:
    """Every registered estimator's answers for ``handlers`` (the first answer wins)."""
    found: dict[str, RunCost | None] = {}
    for estimator in _estimators:
        for name, cost in estimator(handlers).items():
            found.setdefault(name, cost)
    return found
