"""LOG_FORMAT=json: one JSON object per line, with the ids of the work in hand and no secret."""

from __future__ import annotations

import io
import json
import logging

import pytest

from agents_project.logs import AddContext, JsonFormatter, RedactSecrets, bind


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    monkeypatch.setenv("PARTNER_TOKEN", "tok-very-secret-123")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(AddContext())
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("switchyard.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_carries_the_ids_bound_for_the_work_in_hand(lines: io.StringIO) -> None:
    logger = logging.getLogger("switchyard.test-json")
    with bind(event_id="e-1", delivery_id=7, attempt=2, handler="h"):
        logger.info("working on %s", "it", extra={"step": 3})
    logger.info("after")

    first, after = records(lines)
    assert first["message"] == "working on it"
    assert (first["event_id"], first["delivery_id"], first["attempt"], first["handler"]) == (
        "e-1",
        7,
        2,
        "h",
    )
    assert first["step"] == 3
    assert (first["level"], first["logger"]) == ("INFO", "switchyard.test-json")
    assert "delivery_id" not in after


def test_a_traceback_is_kept_and_a_secret_is_not(lines: io.StringIO) -> None:
    logger = logging.getLogger("switchyard.test-json")
    try:
        raise RuntimeError("called with tok-very-secret-123")
    except RuntimeError:
        logger.exception("failed with tok-very-secret-123")

    (record,) = records(lines)
    assert record["message"] == "failed with [redacted]"
    assert "RuntimeError: called with [redacted]" in str(record["traceback"])
    assert "tok-very-secret-123" not in lines.getvalue()
