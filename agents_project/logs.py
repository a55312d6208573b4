"""Logging: known secrets kept out of every line, the ids of the work in hand on every line, and
one JSON object per line when ``LOG_FORMAT=json``.

``RedactSecrets`` replaces known secret values in every record it sees.

Known secrets are the values of secret-looking environment variables (``*KEY*``, ``*TOKEN*``,
``*SECRET*``, ...) and ``SECRET_KEY``: what ``events.redaction.secret_values`` keeps out of stored
rows. A handler or a model answer that quotes one (an agent echoing the API key, an exception
carrying a token) is logged with ``[redacted]`` in its place, message and traceback both.

``bind(...)`` puts ids (event, delivery, attempt, handler) in a context variable for the work
in hand, and ``AddContext`` copies them onto every record logged meanwhile, whichever logger
logs it (the pipeline's, a handler's, the SDK's). ``JsonFormatter`` writes a record as one JSON
object: time, level, logger, message, those ids, any ``extra=`` fields, and the traceback.

Installed on the console handler by ``LOGGING`` (web and management commands) and, in a Celery
worker or beat, on the handlers Celery sets up (agents_project/celery.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._secrets: list[str] | None = None

    def secrets(self) -> list[str]:
        # Read on first use: the filter is built while logging is configured, before the
        # settings and apps it reads from are ready.
        if self._secrets is None:
            from events.redaction import secret_values

            self._secrets = secret_values()
        return self._secrets

    def redact(self, text: str) -> str:
        for secret in self.secrets():
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info))
            cleaned = self.redact(text)
            if cleaned != text:
                # The formatter prints exc_text when it is set; exc_info would print the raw one.
                record.exc_text, record.exc_info = cleaned, None
        return True


def install(handlers: list[logging.Handler]) -> None:
    """Add one RedactSecrets to each handler that has none."""
    for handler in handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())


_context: ContextVar[dict[str, Any] | None] = ContextVar("switchyard_log_context", default=None)


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Within the block, every record carries ``fields`` (ids of the work in hand)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class AddContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


# The attributes every LogRecord has; anything else on a record came from ``extra=`` or bind().
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_text:
            document["traceback"] = record.exc_text
        elif record.exc_info and record.exc_info[1] is not None:
            document["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(document, default=str)


def install_json(handlers: list[logging.Handler]) -> None:
    """Write each handler's records as JSON, with the ids of the work in hand."""
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
        if not any(isinstance(f, AddContext) for f in handler.filters):
            handler.addFilter(AddContext())
