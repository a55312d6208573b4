"""events.transitions.backoff_delay: exponential, capped, jitter that only stretches."""

from __future__ import annotations

import pytest

from events.transitions import backoff_delay

RANDS = [0.0, 0.001, 0.25, 0.5, 0.75, 0.999, 1.0]


@pytest.mark.parametrize(
    ("attempt", "expected"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0)]
)
def test_delay_doubles_each_attempt(attempt: int, expected: float) -> None:
    assert backoff_delay(attempt, base=2.0, cap=600.0, jitter=0.0) == expected


def test_delay_is_capped() -> None:
    assert backoff_delay(10, base=2.0, cap=600.0, jitter=0.0) == 600.0
    assert backoff_delay(60, base=2.0, cap=600.0, jitter=0.25, rand=1.0) == 600.0


def test_jitter_stretches_by_up_to_its_fraction() -> None:
    assert backoff_delay(3, base=2.0, cap=600.0, jitter=0.25, rand=0.0) == 8.0
    assert backoff_delay(3, base=2.0, cap=600.0, jitter=0.25, rand=0.5) == 9.0
    assert backoff_delay(3, base=2.0, cap=600.0, jitter=0.25, rand=1.0) == 10.0


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5])
def test_random_jitter_never_shortens_a_delay(attempt: int) -> None:
    step = 2.0 * 2 ** (attempt - 1)
    delays = [backoff_delay(attempt, base=2.0, cap=600.0, jitter=0.25) for _ in range(200)]
    assert all(step <= d <= step * 1.25 for d in delays), delays


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, 0.99])
def test_delays_strictly_grow_over_attempts_one_to_five_whatever_the_rand(jitter: float) -> None:
    for attempt in range(1, 5):
        longest_now = max(backoff_delay(attempt, 2.0, 600.0, jitter, rand=r) for r in RANDS)
        shortest_next = min(backoff_delay(attempt + 1, 2.0, 600.0, jitter, rand=r) for r in RANDS)
        assert longest_now < shortest_next, (attempt, longest_now, shortest_next)
