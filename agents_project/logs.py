"""A logging filter that replaces known secret values in every record it sees.

Known secrets are the values of secret-looking environment variables (``*KEY*``, ``*TOKEN*``,
``*SECRET*``, ...) and ``SECRET_KEY``: what ``events.redaction.secret_values`` keeps out of stored
rows. A handler or a model answer that quotes one (an agent echoing the API key, an exception
carrying a token) is logged with ``[redacted]`` in its place, message and traceback both.

Installed on the console handler by ``LOGGING`` (web and management commands) and, in a Celery
worker or beat, on the handlers Celery sets up (agents_project/celery.py).
"""

from __future__ import annotations

import logging
import traceback

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
