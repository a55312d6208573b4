"""The circuit breaker's state machine (events.breakers) against the test session's Redis:
the threshold within a window, the cool-down, exactly one probe, the probe's expiry, and the
operator's override."""

from __future__ import annotations

import threading
import time

import pytest

from events import breakers
from events.breakers import Breaker


def _breaker(
    *, threshold: int = 3, window: int = 30, cooldown: int = 1, mode: str = "auto"
) -> Breaker:
    return Breaker("flaky", True, mode, threshold, window, cooldown)


def _fail(breaker: Breaker, times: int) -> list[str | None]:
    return [breakers.record(breaker, ok=False) for _ in range(times)]


def test_the_breaker_opens_at_the_threshold_and_holds_for_the_cool_down() -> None:
    # given a breaker opening at 3 failures within 30 s, cooling down 1 s
    breaker = _breaker(threshold=3, cooldown=1)

    # when two attempts fail, it stays closed; the third opens it
    assert _fail(breaker, 2) == ["closed", "closed"]
    assert breakers.allow(breaker, 1, probe_ttl=10).state == "go"
    assert _fail(breaker, 1) == ["open"]

    # then deliveries are held until the cool-down ends, and the reason says why
    held = breakers.allow(breaker, 2, probe_ttl=10)
    assert held.state == "open"
    assert 0.8 < held.wait <= 1.0
    assert held.reason.startswith("circuit open: flaky since ")
    assert held.reason.endswith(", 3 failures in 30 s")
    state = breakers.read(breaker)
    assert (state.state, state.failures) == ("open", 3)
    assert state.until is not None and state.since is not None
    assert (state.until - state.since).total_seconds() == pytest.approx(1.0, abs=0.01)


def test_failures_older_than_the_window_do_not_count() -> None:
    breaker = _breaker(threshold=2, window=1)
    assert _fail(breaker, 1) == ["closed"]
    time.sleep(1.1)
    assert _fail(breaker, 1) == ["closed"]
    assert _fail(breaker, 1) == ["open"]


def test_after_the_cool_down_exactly_one_delivery_probes_and_its_success_closes_it() -> None:
    # given an open breaker whose cool-down has ended
    breaker = _breaker(threshold=1, cooldown=1)
    assert _fail(breaker, 1) == ["open"]
    time.sleep(1.05)

    # when 20 deliveries ask at once
    verdicts: list[str] = []
    lock = threading.Lock()

    def ask(delivery_id: int) -> None:
        verdict = breakers.allow(breaker, delivery_id, probe_ttl=10)
        with lock:
            verdicts.append(verdict.state)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then one is the probe and the others are held, for at most a cool-down
    assert sorted(verdicts) == ["half"] * 19 + ["probe"]
    held = breakers.allow(breaker, 99, probe_ttl=10)
    assert held.state == "half"
    assert held.reason.startswith("circuit half-open, probing: flaky since ")
    assert held.reason.endswith(", 1 failures in 30 s")
    assert 0 < held.wait <= 1.0
    assert breakers.read(breaker).state == "half-open"

    # and the probe's success closes it: every delivery goes
    assert breakers.record(breaker, ok=True) == "closed"
    assert breakers.allow(breaker, 99, probe_ttl=10).state == "go"
    assert (breakers.read(breaker).state, breakers.read(breaker).failures) == ("closed", 0)


def test_a_failed_probe_opens_the_breaker_for_another_cool_down() -> None:
    breaker = _breaker(threshold=1, cooldown=1)
    _fail(breaker, 1)
    first_since = breakers.read(breaker).since
    time.sleep(1.05)
    assert breakers.allow(breaker, 1, probe_ttl=10).state == "probe"

    assert breakers.record(breaker, ok=False) == "open"

    held = breakers.allow(breaker, 2, probe_ttl=10)
    assert held.state == "open"
    assert 0.8 < held.wait <= 1.0
    state = breakers.read(breaker)
    assert (state.state, state.since, state.failures) == ("open", first_since, 2)


def test_a_probe_that_never_reports_gives_its_token_back_after_its_lifetime() -> None:
    # given a half-open breaker whose probe (delivery 1) died with its worker
    breaker = _breaker(threshold=1, cooldown=1)
    _fail(breaker, 1)
    time.sleep(1.05)
    assert breakers.allow(breaker, 1, probe_ttl=1).state == "probe"
    assert breakers.allow(breaker, 2, probe_ttl=1).state == "half"

    # when the probe's token lifetime passes
    time.sleep(1.05)

    # then the next delivery asking is the probe
    assert breakers.allow(breaker, 2, probe_ttl=1).state == "probe"
    assert breakers.allow(breaker, 3, probe_ttl=1).state == "half"


def test_a_success_while_closed_changes_nothing_and_a_failure_while_open_is_not_counted() -> None:
    breaker = _breaker(threshold=2, cooldown=30)
    assert breakers.record(breaker, ok=True) == "closed"
    assert _fail(breaker, 2) == ["closed", "open"]
    assert _fail(breaker, 3) == ["open"] * 3
    assert breakers.record(breaker, ok=True) == "open"  # a straggler's success: still open
    assert breakers.read(breaker).failures == 2


def test_the_operators_override_wins_over_the_state_in_redis() -> None:
    # given a breaker that Redis holds open
    automatic = _breaker(threshold=1, cooldown=30)
    _fail(automatic, 1)
    assert breakers.allow(automatic, 1, probe_ttl=10).state == "open"

    # forced closed: every delivery goes, and results are not counted
    closed = _breaker(threshold=1, cooldown=30, mode="closed")
    assert breakers.allow(closed, 1, probe_ttl=10).state == "go"
    assert breakers.record(closed, ok=True) is None
    assert breakers.effective(closed).state == "forced closed"

    # forced open: every delivery waits, whatever Redis holds
    breakers.reset(automatic)
    forced = _breaker(threshold=1, cooldown=30, mode="open")
    held = breakers.allow(forced, 1, probe_ttl=10)
    assert (held.state, held.wait, held.reason) == ("open", 30.0, "circuit forced open: flaky")

    # automatic again after a reset: closed, nothing counted
    assert breakers.allow(automatic, 1, probe_ttl=10).state == "go"
    assert breakers.read(automatic).failures == 0


def test_a_disabled_breaker_holds_nothing_and_counts_nothing() -> None:
    disabled = Breaker("flaky", False, "auto", 1, 30, 30)
    assert breakers.record(disabled, ok=False) is None
    assert breakers.allow(disabled, 1, probe_ttl=10).state == "go"
    assert breakers.effective(disabled).state == "disabled"


def test_while_a_probe_runs_the_others_ask_again_within_five_seconds_not_a_cool_down() -> None:
    breaker = _breaker(threshold=1, cooldown=30)
    _fail(breaker, 1)
    client = breakers.redis_client(breakers.settings.REDIS_URL)
    client.hset(breaker.state_key, "until", "0")  # the cool-down is over
    assert breakers.allow(breaker, 1, probe_ttl=60).state == "probe"

    held = breakers.allow(breaker, 2, probe_ttl=60)

    assert held.state == "half"
    assert held.wait == pytest.approx(5.0)


def test_the_probe_asking_again_keeps_its_token() -> None:
    # given a probe that another limit deferred before its claim
    breaker = _breaker(threshold=1, cooldown=1)
    _fail(breaker, 1)
    time.sleep(1.05)
    assert breakers.allow(breaker, 7, probe_ttl=10).state == "probe"

    # then it is still the probe when it asks again, and nobody else is
    assert breakers.allow(breaker, 7, probe_ttl=10).state == "probe"
    assert breakers.allow(breaker, 8, probe_ttl=10).state == "half"
