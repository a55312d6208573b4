"""One recovery email per failed payment attempt, however many events describe it, end to end:
Stripe's signed webhooks over HTTP to the live server, the agent and the approved actions run
by a real Celery worker (the real ``anthropic`` SDK against a fake Messages API), the email
through Django's file backend in the worker's own process."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from events.models import Delivery, DeliveryStatus, Route, Source
from events.webhooks.stripe import sign
from handlers.agents import payment_recovery
from handlers.approvals import EXECUTOR, approve
from handlers.models import Approval
from tests.agents.conftest import FakeMessagesAPI
from tests.conftest import Worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

QUEUE = "effect-keys"
SECRET = "whsec_effect_keys_secret"
FIXTURE = Path(payment_recovery.__file__).parent / "fixtures" / "invoice.payment_failed.json"
INVOICE = "in_1SZbX2LkdIwHu7ixQf3mT9aB"
DRAFT = {"invoice_id": INVOICE, "subject": "Your payment didn't go through", "body": "Hi Dana."}
ANSWER = {"summary": "Payment failed.", "decision": "email", "reason": "A reminder may help."}


@pytest.fixture
def mailbox(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def recovery_worker(agent_worker: Callable[..., Worker], mailbox: Path) -> Worker:
    """One thread, so the fake model's scripted answers go to the runs in order; mail to
    files in ``mailbox``."""
    env = {
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mailbox),
        "SWITCHYARD_RECOVERY_FROM": "billing@northwind.example",
    }
    return agent_worker("effect-keys", QUEUE, env=env, concurrency=1)


def post_signed(url: str, document: dict[str, Any]) -> int:
    body = json.dumps(document).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sign(SECRET, body, int(time.time())),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return int(response.status)


def all_succeeded(handler: str, count: int) -> bool:
    statuses = list(Delivery.objects.filter(handler=handler).values_list("status", flat=True))
    return len(statuses) == count and set(statuses) == {DeliveryStatus.SUCCEEDED}


def sent(mailbox: Path) -> list[str]:
    """The Message-ID of every email the worker sent."""
    if not mailbox.exists():
        return []
    return [
        line.split(":", 1)[1].strip()
        for path in sorted(mailbox.iterdir())
        for line in path.read_text().splitlines()
        if line.startswith("Message-ID:")
    ]


def test_two_signed_events_about_one_failed_attempt_send_one_email(
    routes: None, live_server: Any, model: FakeMessagesAPI, mailbox: Path,
    recovery_worker: Worker,
) -> None:  # fmt: skip
    # given the recovery agent and the approved actions run on the worker's queue
    Source.objects.create(slug="pay", kind="stripe", secrets=[SECRET])
    Route.objects.filter(handler__in=["payments.recovery", EXECUTOR]).update(queue=QUEUE)
    for _ in range(2):
        model.tool_use("invoice_summary", {"invoice_id": INVOICE}, id="toolu_1")
        model.tool_use("send_recovery_email", DRAFT, id="toolu_2")
        model.text(f"```json\n{json.dumps(ANSWER)}\n```")
    document = json.loads(FIXTURE.read_text())

    # when Stripe describes one failed attempt twice (two event ids), and both drafts are
    # approved
    first = post_signed(f"{live_server.url}/hooks/pay", document)
    again = post_signed(f"{live_server.url}/hooks/pay", {**document, "id": "evt_same_failure"})
    wait_until(lambda: all_succeeded("payments.recovery", 2), timeout=30, what="two drafts")
    for approval in Approval.objects.order_by("pk"):
        assert approve(approval.pk, by="ops")
    wait_until(lambda: all_succeeded(EXECUTOR, 2), timeout=30, what="two approved actions")

    # then the customer got one email; the second action reports that one
    assert (first, again) == (202, 202)
    ids = sent(mailbox)
    assert len(ids) == 1
    results = [d.outcome["result"] for d in Delivery.objects.filter(handler=EXECUTOR)]
    assert [r["message_id"] for r in results] == ids * 2
