"""Health for load balancers and orchestrators, and metrics for Prometheus.

- ``GET /healthz``: liveness, cheap: can this process reach the database?
- ``GET /readyz``: is the system doing its work? The database and the broker answer, a worker
  consumes every queue a route sends to (events.liveness), a beat holds the schedule lock, and
  no due delivery has waited longer than ``SWITCHYARD_READY_MAX_WAIT``. 503 with the reasons.
- ``GET /metrics``: Prometheus's text format, summed over this host's processes
  (events/metrics.py, handlers/metrics.py).
"""

from __future__ import annotations

from celery import current_app
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from agents_project.prometheus import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from .. import conf, liveness
from ..liveness import Check
from ..metrics import WAITING, PipelineCollector
from ..models import Delivery


def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Check] = {"database": _database()}
    checks["broker"] = _broker()
    if checks["database"]["ok"]:
        checks["workers"] = liveness.workers_check()
        checks["backlog"] = _backlog()
    checks["beat"] = liveness.beat_check()
    reasons = [f"{name}: {check['detail']}" for name, check in checks.items() if not check["ok"]]
    body = {"status": "unready" if reasons else "ok", "reasons": reasons, "checks": checks}
    return JsonResponse(body, status=503 if reasons else 200)


def metrics(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(PipelineCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _ok(detail: str) -> Check:
    return {"ok": True, "detail": detail}


def _failed(detail: str) -> Check:
    return {"ok": False, "detail": detail}


def _database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return _failed(f"unreachable ({type(exc).__name__})")
    return _ok("answers")


def _broker() -> Check:
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001  (kombu raises each transport's own errors)
        return _failed(f"unreachable ({type(exc).__name__})")
    return _ok("answers")


def _backlog() -> Check:
    limit = float(conf.READY_MAX_WAIT.get())
    now = timezone.now()
    due = (
        Delivery.objects.filter(status__in=WAITING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    waited = 0.0 if due is None else (now - due).total_seconds()
    if waited > limit:
        return _failed(f"the oldest due delivery has waited {waited:.0f} s (limit {limit:g} s)")
    return _ok(f"the oldest due delivery has waited {waited:.0f} s" if due else "nothing waits")


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"error": "not found", "path": request.path}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "internal error"}, status=500)


__all__ = ["healthz", "metrics", "not_found", "readyz", "server_error"]
