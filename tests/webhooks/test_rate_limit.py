"""Per-source rate limit, opt-in: off by default (a refused GitHub webhook is never
redelivered), and a source that sets ``rate_limit_per_minute`` has a flood answered 429."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from events import ratelimit
from events.models import Event, Source
from events.webhooks.hmac import HEADER, sign

pytestmark = pytest.mark.django_db


def _post(client: Client, slug: str, n: int, secret: str = "s3cret") -> Any:
    raw = json.dumps({"type": "flood.test", "id": f"{slug}-{n}", "payload": {"n": n}}).encode()
    return client.post(
        f"/hooks/{slug}",
        data=raw,
        content_type="application/json",
        headers={HEADER: sign(secret, raw)},
    )


@pytest.fixture
def limited(db: None, redis_server: Any) -> Source:
    redis_server.client().flushdb()
    return Source.objects.create(
        slug="limited", kind="hmac", secrets=["s3cret"], settings={"rate_limit_per_minute": 3}
    )


def test_requests_over_the_limit_get_429_with_retry_after_and_store_nothing(
    client: Client, limited: Source
) -> None:
    answers = [_post(client, "limited", n) for n in range(5)]

    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    over = answers[3]
    retry_after = int(over["Retry-After"])
    assert 1 <= retry_after <= 60
    assert over.json() == {
        "error": "source 'limited' is over its limit of 3 requests a minute",
        "retry_after": retry_after,
    }
    assert sorted(Event.objects.values_list("external_id", flat=True)) == [
        "limited-0",
        "limited-1",
        "limited-2",
    ]


def test_one_source_over_its_limit_does_not_limit_another(client: Client, limited: Source) -> None:
    Source.objects.create(slug="calm", kind="hmac", secrets=["s3cret"])
    for n in range(4):
        _post(client, "limited", n)

    assert _post(client, "calm", 0).status_code == 202


def test_forged_requests_do_not_use_up_the_budget(client: Client, limited: Source) -> None:
    for n in range(10):
        assert _post(client, "limited", n, secret="wrong").status_code == 401

    assert _post(client, "limited", 99).status_code == 202


def test_the_window_resets_after_a_minute(limited: Source) -> None:
    start = 60 * 16_667 + 20.0  # 20 s into a window
    for _ in range(3):
        ratelimit.check("limited", 3, now=start)
    with pytest.raises(ratelimit.RateLimited) as caught:
        ratelimit.check("limited", 3, now=start)
    assert caught.value.retry_after == 40
    ratelimit.check("limited", 3, now=start + 40)  # the next window


def test_an_unreachable_redis_does_not_refuse_webhooks(
    client: Client, limited: Source, settings: Any
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    answers = [_post(client, "limited", n) for n in range(5)]
    assert [a.status_code for a in answers] == [202] * 5


def test_a_default_source_is_never_refused_under_a_burst_above_the_old_limit(
    client: Client, redis_server: Any
) -> None:
    # given: a source with no rate_limit_per_minute, on the project's default settings, and a
    # burst of 700 signed requests in one minute (the old default refused past 600)
    broker = redis_server.client()
    broker.flushdb()
    Source.objects.create(slug="busy", kind="hmac", secrets=["s3cret"])

    # when
    codes = [_post(client, "busy", n).status_code for n in range(700)]

    # then: every one is stored, and the limiter was not even consulted
    assert codes == [202] * 700
    assert Event.objects.filter(source__slug="busy").count() == 700
    assert broker.keys("switchyard:ratelimit:*") == []


def test_the_rate_limit_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from events import conf

    monkeypatch.delenv("SWITCHYARD_HOOK_RATE_LIMIT", raising=False)
    assert conf.HOOK_RATE_LIMIT.get() == 0
    assert ratelimit.limit_for({}) == 0
    assert ratelimit.limit_for({"rate_limit_per_minute": 600}) == 600


def test_the_default_limit_comes_from_settings(settings: Any) -> None:
    settings.SWITCHYARD_HOOK_RATE_LIMIT = 42
    assert ratelimit.limit_for({}) == 42
    assert ratelimit.limit_for({"rate_limit_per_minute": 0}) == 0
    assert ratelimit.limit_for({"rate_limit_per_minute": "lots"}) == 42
