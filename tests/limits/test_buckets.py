"""events.limits.take: the token bucket in Redis (the test session's private server)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from events.limits import Bucket, take


def _bucket(rate: float, burst: int) -> Bucket:
    return Bucket(f"switchyard:limit:test:{uuid.uuid4().hex}", "test", rate, burst)


def test_a_full_bucket_lets_its_burst_start_at_once_then_spaces_the_rest() -> None:
    bucket = _bucket(rate=2.0, burst=3)

    verdicts = [take((bucket,), horizon=10) for _ in range(5)]

    assert [v.reserved for v in verdicts if v] == [True] * 5
    waits = [v.wait for v in verdicts if v]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.5, abs=0.02)
    assert waits[4] == pytest.approx(1.0, abs=0.02)
    assert verdicts[4] is not None and verdicts[4].reason == "rate limit test: 2/s"


def test_tokens_come_back_at_the_rate() -> None:
    bucket = _bucket(rate=10.0, burst=1)
    first = take((bucket,), horizon=10)
    assert first is not None and first.wait == 0.0

    time.sleep(0.12)
    again = take((bucket,), horizon=10)

    assert again is not None and (again.reserved, again.wait) == (True, 0.0)


def test_starts_are_lent_only_up_to_the_horizon_then_refused_without_taking() -> None:
    bucket = _bucket(rate=1.0, burst=1)
    lent = [take((bucket,), horizon=2) for _ in range(3)]  # now, +1 s, +2 s

    refused = take((bucket,), horizon=2)
    refused_again = take((bucket,), horizon=2)

    assert [v.wait for v in lent if v] == pytest.approx([0.0, 1.0, 2.0], abs=0.02)
    assert refused is not None and refused.reserved is False
    assert refused.wait == pytest.approx(1.0, abs=0.02)
    # a refusal took nothing: the next one is refused for the same wait
    assert refused_again is not None and refused_again.wait == pytest.approx(1.0, abs=0.02)


def test_several_buckets_give_a_token_each_or_none() -> None:
    roomy, tight = _bucket(rate=100.0, burst=5), _bucket(rate=0.5, burst=1)
    take((tight,), horizon=0)  # tight's one token, and with horizon 0 it lends one more
    take((tight,), horizon=0)

    refused = take((roomy, tight), horizon=0)
    roomy_alone = [take((roomy,), horizon=0) for _ in range(5)]

    assert refused is not None and refused.reserved is False
    assert refused.reason == "rate limit test: 0.5/s"
    # the refusal took nothing from the roomy bucket: its whole burst is still there
    assert [v.wait for v in roomy_alone if v] == [0.0] * 5


def test_a_lowered_rate_applies_to_the_next_token() -> None:
    bucket = _bucket(rate=50.0, burst=1)
    take((bucket,), horizon=10)

    slower = take((Bucket(bucket.key, "test", 1.0, 1),), horizon=10)

    assert slower is not None and slower.wait == pytest.approx(1.0, abs=0.05)


def test_with_redis_unreachable_the_limits_are_not_applied(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    verdict = take((_bucket(rate=1.0, burst=1),), horizon=10)

    assert verdict is None
    assert "rate limits not applied: Redis unreachable" in caplog.text
