"""events.status.derive_status: the event-state rules of docs/architecture.md, in order of
precedence."""

from __future__ import annotations

import pytest

from events.status import derive_status


@pytest.mark.parametrize(
    ("counts", "any_started", "expected"),
    [
        # ignored: no route matched
        pytest.param({}, False, "ignored", id="no-deliveries"),
        pytest.param({"pending": 0}, False, "ignored", id="zero-counts"),
        # received: none started
        pytest.param({"pending": 2}, False, "received", id="all-pending"),
        # processing: some pending or running
        pytest.param({"pending": 2}, True, "processing", id="pending-after-a-start"),
        pytest.param({"running": 1, "pending": 1}, True, "processing", id="running"),
        pytest.param({"running": 1, "succeeded": 1}, True, "processing", id="one-still-running"),
        pytest.param(
            {"pending": 1, "dead_lettered": 1}, True, "processing", id="pending-beats-dead"
        ),
        # failed: one is waiting for a retry
        pytest.param({"retrying": 1}, True, "failed", id="retrying"),
        pytest.param({"retrying": 1, "running": 1}, True, "failed", id="retrying-beats-running"),
        pytest.param({"retrying": 1, "dead_lettered": 1}, True, "failed", id="retrying-beats-dead"),
        # dead_lettered: none left to run and at least one dead-lettered
        pytest.param({"dead_lettered": 1}, True, "dead_lettered", id="dead"),
        pytest.param(
            {"dead_lettered": 1, "succeeded": 2, "skipped": 1},
            True,
            "dead_lettered",
            id="dead-among-finished",
        ),
        # processed: all succeeded or skipped
        pytest.param({"succeeded": 2}, True, "processed", id="all-succeeded"),
        pytest.param({"succeeded": 1, "skipped": 1}, True, "processed", id="succeeded-skipped"),
        pytest.param({"skipped": 2}, True, "processed", id="all-skipped"),
    ],
)
def test_derive_status(counts: dict[str, int], any_started: bool, expected: str) -> None:
    assert derive_status(counts, any_started) == expected
