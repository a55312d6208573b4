"""Rows whose admin pages carry long content: a deeply nested payload, a long traceback over
several attempts with a requeue between them (on the delivery's, the dead letter's and the
event's page), an agent's trace, an approval of a recovery email with Stripe's long payment
link, a schedule with a tick, and a source."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from events.delivery import execute
from events.models import (
    Attempt,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Event,
    SchedulePolicy,
    ScheduleTick,
    Source,
    TickStatus,
)
from events.publish import publish
from events.schedules import SCHEDULE_TASK
from events.transitions import requeue
from events.webhooks.stripe import sign
from handlers.models import Approval
from tests.agents.builtin.payment_recovery.helpers import stripe_event

STRIPE_SECRET = "whsec_pages_fit_secret"
# A payment link as long as Stripe's are, with no place to break a line.
STRIPE_LINK = "https://invoice.stripe.com/i/acct_1QhT7sLkdIwHu7ix/test_" + "YWNjdF8xUWhUN3NM" * 6


def nested(depth: int) -> dict[str, Any]:
    """A payload nested ``depth`` levels, each level with a long unbroken value."""
    if depth == 0:
        return {"leaf": "x" * 300}
    return {
        f"level_{depth}_with_a_rather_long_key_name": nested(depth - 1),
        "note": "a-long-value-without-spaces-" * 8,
    }


def long_traceback(number: int) -> str:
    frames = "".join(
        f'  File "/srv/switchyard/.venv/lib/python3.11/site-packages/some/deep/package/'
        f'module_{i}.py", line {100 + i}, in a_function_with_a_long_name_{i}\n'
        f"    result = call_something(argument_one, argument_two, argument_three={i})\n"
        for i in range(12)
    )
    return (
        f"Traceback (most recent call last):\n{frames}"
        f"ValueError: attempt {number}: the guest record is incomplete: {'missing-field-' * 12}\n"
    )


def failed_attempt(delivery: Delivery, number: int, retry: float | None) -> Attempt:
    return Attempt.objects.create(
        delivery=delivery,
        number=number,
        status=AttemptStatus.FAILED,
        started_at=timezone.now() - timedelta(minutes=10 - number),
        finished_at=timezone.now() - timedelta(minutes=10 - number, seconds=-1),
        duration_ms=1000,
        worker="celery@worker-host-with-a-long-name.internal.example.com",
        error_class="builtins.ValueError",
        error_message=f"the guest record is incomplete: {'missing-field-' * 30}",
        traceback=long_traceback(number),
        retry_delay=retry,
    )


def requeued_delivery(source: Source) -> Delivery:
    """Three failed attempts, a requeue by ``root``, and a fourth failed attempt."""
    event = publish(source=source, type="test.long.failure", payload={"order": "ord_long"}).event
    delivery = Delivery.objects.create(
        event=event,
        handler="test.notify",
        status=DeliveryStatus.DEAD_LETTERED,
        attempts=3,
        total_attempts=3,
        error_class="builtins.ValueError",
        last_error="ValueError: " + "missing-field-" * 40,
        outcome={"detail": nested(4), "link": STRIPE_LINK},
        finished_at=timezone.now(),
    )
    for number in (1, 2, 3):
        failed_attempt(delivery, number, None if number == 3 else 2.0 * number)
    assert requeue([delivery.pk], by="root") == 1
    failed_attempt(delivery, 4, 2.0)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.DEAD_LETTERED, attempts=1, total_attempts=4
    )
    return delivery


def recovery_delivery() -> tuple[Delivery, Approval]:
    """The payment recovery agent's run on a signed Stripe event (offline provider): its
    trace, and the approval of the email it drafted."""
    Source.objects.create(slug="pay", kind="stripe", secrets=[STRIPE_SECRET])
    document = stripe_event(invoice={"hosted_invoice_url": STRIPE_LINK})
    body = json.dumps(document).encode()
    response = Client().post(
        "/hooks/pay",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": sign(STRIPE_SECRET, body, int(time.time()))},
    )
    assert response.status_code == 202, response.content
    delivery = Delivery.objects.get(event__external_id=document["id"], handler="payments.recovery")
    execute(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    return delivery, Approval.objects.get(delivery=delivery)


def long_schedule() -> tuple[PeriodicTask, ScheduleTick]:
    """A schedule on a crontab the system's cleanup task shares."""
    crontab, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="4")
    PeriodicTask.objects.create(
        name="celery.backend_cleanup", task="celery.backend_cleanup", crontab=crontab
    )
    task = PeriodicTask.objects.create(
        name="nightly-report",
        task=SCHEDULE_TASK,
        crontab=crontab,
        kwargs=json.dumps({"report": "sales", "recipients": ["a-long-list-" * 20]}),
        description="The nightly sales report. " * 8,
    )
    SchedulePolicy.objects.create(periodic_task=task)
    tick = ScheduleTick.objects.create(
        schedule=task,
        name=task.name,
        key=f"{task.name}@2026-01-01T04:00:00+00:00",
        due_at=timezone.now(),
        status=TickStatus.SKIPPED,
        detail="a run of this schedule was still in flight: " + "delivery-" * 30,
    )
    return task, tick


def long_pages(source: Source) -> dict[str, str]:
    """Every kind of detail page with long content, by name."""
    event = publish(
        source=source, type="test.long.payload", payload={"order": nested(6), "link": STRIPE_LINK}
    ).event
    failed = requeued_delivery(source)
    traced, approval = recovery_delivery()
    schedule, tick = long_schedule()
    assert Event.objects.filter(pk=event.pk).exists()
    return {
        "event": reverse("admin:events_event_change", args=[event.pk]),
        "delivery": reverse("admin:events_delivery_change", args=[failed.pk]),
        "dead letter": reverse("admin:events_deadletter_change", args=[failed.pk]),
        "event with deliveries": reverse("admin:events_event_change", args=[failed.event_id]),
        "trace": reverse("admin:events_delivery_change", args=[traced.pk]),
        "approval": reverse("admin:handlers_approval_change", args=[approval.pk]),
        "schedule": reverse("admin:events_schedule_change", args=[schedule.pk]),
        "tick": reverse("admin:events_scheduletick_change", args=[tick.pk]),
        "source": reverse("admin:events_source_change", args=[source.pk]),
    }
