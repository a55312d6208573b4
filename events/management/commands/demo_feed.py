"""manage.py demo_feed: post the demo's sample events to the running web server, signed.

The set makes every state show up in the admin: two cancellations that are processed, one
that fails for good (dead-lettered at once), one that fails transiently (failed, retrying,
then dead-lettered), one nobody routes (ignored), and a duplicate (answered 200 with the first
event's id). Then one recorded event per built-in agent (_demo_agents): a GitHub pull request
and a Stripe failed payment signed as those senders sign, a helpdesk ticket and a monitoring
alert, and last the daily briefing, run as its schedule would. External ids carry a run id, so
every run adds new events.
"""

from __future__ import annotations

import http.client
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from django.utils import timezone

from events.models import Source
from events.webhooks.hmac import HEADER, sign

from . import _demo_agents
from ._local_state import admin_url, login_lines
from .demo_setup import DEMO_SLUG

HOST = "127.0.0.1"
REQUEST_TIMEOUT = 5.0
HEALTH_TIMEOUT = 2.0


@dataclass(frozen=True)
class Sample:
    label: str
    expect: str
    envelope: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def samples(run_id: str) -> list[Sample]:
    """The demo set; the last one repeats the first (same body, same external id)."""

    def cancelled(n: int, guest: str, **extra: Any) -> dict[str, Any]:
        return {
            "type": "reservation.cancelled",
            "id": f"demo-{run_id}-{n}",
            "partition_key": f"R-{1000 + n}",
            "payload": {
                "reservation": f"R-{1000 + n}",
                "guest": guest,
                "party_size": 2 + n % 3,
                "slot": f"{18 + n}:30",
                **extra,
            },
        }

    first = cancelled(1, "Ada")
    return [
        Sample("clean cancellation", "processed", first),
        Sample("clean cancellation", "processed", cancelled(2, "Grace")),
        Sample(
            "permanent failure",
            "dead-lettered at once",
            cancelled(3, "Linus", simulate="permanent_failure"),
        ),
        Sample(
            "transient failure",
            "failed (retrying), dead-lettered after 4 attempts",
            cancelled(4, "Margaret", simulate="transient_failure"),
        ),
        Sample(
            "no route",
            "ignored",
            {
                "type": "reservation.no_show",
                "id": f"demo-{run_id}-5",
                "payload": {"reservation": "R-1005", "guest": "Ken"},
            },
        ),
        Sample("duplicate of the first", "200, the first event's id", first),
    ]


def post(url: str, secret: str, envelope: dict[str, Any]) -> Answer:
    """POST ``envelope`` signed like any hmac sender would; HTTP errors come back as answers."""
    body = json.dumps(envelope).encode()
    return post_raw(url, body, {HEADER: sign(secret, body)})


def post_raw(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST ``body`` as JSON with ``headers``; HTTP errors come back as answers."""
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:  # noqa: S310
            return Answer(response.status, _json(response.read()))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, _json(exc.read()))
    except (OSError, http.client.HTTPException) as exc:
        raise CommandError(f"could not POST to {url}: {exc}") from None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {"error": raw[:200].decode(errors="replace")}
    return value if isinstance(value, dict) else {"body": value}


def web_is_up(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(  # noqa: S310
            base_url + reverse("healthz"), timeout=HEALTH_TIMEOUT
        ) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        return False


class Command(BaseCommand):
    help = (
        "Post the demo's sample events to the 'demo' source of the web server on 127.0.0.1, "
        "then print where to look in the admin. Run manage.py demo_setup first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="web server port on 127.0.0.1")
        parser.add_argument(
            "--wait", action="store_true", help="wait for GET /healthz to answer 200 first"
        )
        parser.add_argument(
            "--wait-timeout", type=float, default=60.0, help="seconds to wait (default 60)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        source = Source.objects.filter(slug=DEMO_SLUG).first()
        if source is None or not source.secrets:
            raise CommandError(f"no {DEMO_SLUG!r} source with a secret: run manage.py demo_setup")
        base_url = f"http://{HOST}:{opts['port']}"
        if opts["wait"]:
            self._wait_for_web(base_url, opts["wait_timeout"])

        run_id = timezone.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        url = base_url + reverse("hook", args=[DEMO_SLUG])
        self.stdout.write(f"demo feed: posting sample events to {url} (run {run_id})")
        answers: list[Answer] = []
        for sample in samples(run_id):
            answer = post(url, source.secrets[0], sample.envelope)
            answers.append(answer)
            self.stdout.write(
                f"  {answer.status}  {sample.envelope['type']:<22} {sample.envelope['id']:<30} "
                f"{sample.label:<23} -> {sample.expect}"
            )
        problems = self._check(answers)
        problems += self._agents(base_url, source.secrets[0], run_id)
        self._where_to_look(base_url)
        if problems:
            raise CommandError("; ".join(problems))

    def _agents(self, base_url: str, secret: str, run_id: str) -> list[str]:
        """One recorded event per built-in agent; the problems seen (non-202 answers)."""
        self.stdout.write("demo feed: one recorded event per built-in agent")
        problems = []
        url = base_url + reverse("hook", args=[DEMO_SLUG])
        sent: list[tuple[str, str, str, Answer]] = []
        for label, expect, envelope in _demo_agents.hmac_envelopes(run_id):
            sent.append((envelope["type"], label, expect, post(url, secret, envelope)))
        for request in _demo_agents.provider_requests(run_id):
            hook = base_url + reverse("hook", args=[request.slug])
            answer = post_raw(hook, request.body, request.headers)
            sent.append((request.event_type, request.label, request.expect, answer))
        for event_type, label, expect, answer in sent:
            self.stdout.write(f"  {answer.status}  {event_type:<30} {label:<22} -> {expect}")
            if answer.status != 202:
                problems.append(f"{label} was answered {answer.status}: {answer.body}")
        briefing = _demo_agents.run_briefing(run_id)
        self.stdout.write(f"  {briefing}")
        return problems

    def _wait_for_web(self, base_url: str, timeout: float) -> None:
        self.stdout.write(f"demo feed: waiting for {base_url}/healthz (up to {timeout:.0f} s)")
        started = time.monotonic()
        while not web_is_up(base_url):
            if time.monotonic() - started > timeout:
                raise CommandError(
                    f"the web server at {base_url} did not answer GET /healthz with 200 within "
                    f"{timeout:.0f} s; see the web process's output above"
                )
            time.sleep(0.5)
        self.stdout.write(f"demo feed: web server up after {time.monotonic() - started:.1f} s")

    @staticmethod
    def _check(answers: list[Answer]) -> list[str]:
        problems = [
            f"sample {n} was answered {a.status}: {a.body.get('error', a.body)}"
            for n, a in enumerate(answers[:-1], start=1)
            if a.status != 202
        ]
        duplicate, first = answers[-1], answers[0]
        if duplicate.status != 200 or duplicate.body.get("id") != first.body.get("id"):
            problems.append(f"the duplicate was answered {duplicate.status} {duplicate.body}")
        return problems

    def _where_to_look(self, base_url: str) -> None:
        # The server the feed just talked to, whatever port it was started on.
        admin = admin_url(base_url + "/")
        public = base_url
        indent = " " * 16
        lines = [
            "",
            "Where to look. Events settle within seconds, except the transient failure: it",
            "shows 'failed (retrying)' for about 40 s (retries 5, 10 and 20 s apart), then",
            "'dead-lettered'.",
            f"  admin:        {admin}",
            *(indent + line for line in login_lines("admin")),
            f"  events:       {admin}events/event/",
            f"  deliveries:   {admin}events/delivery/",
            f"  dead letters: {admin}events/deadletter/",
            f"  approvals:    {admin}handlers/approval/  (the recovery email waits here)",
            f"  agent usage:  {admin}handlers/agentusage/",
            f"  send your own to {public}/hooks/demo: README.md, 'Sending an event'",
            "",
        ]
        # One write, so the worker's log lines do not land in the middle of it.
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
