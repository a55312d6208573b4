"""Exceptions a handler raises to say how its failure should be treated."""

from __future__ import annotations


class HandlerError(Exception):
    """Base class for failures a handler reports on purpose."""


class TransientError(HandlerError):
    """Worth trying again later: a timeout, a 429, a dependency that is down.

    ``retry_after`` (seconds), when given, replaces the route's backoff for the next attempt.
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(HandlerError):
    """Trying again cannot help: bad input, a 4xx, a rule says no. Dead-letters at once."""


class TimeLimitExceeded(TransientError):
    """The attempt ran out of its time limit before it could finish; the delivery is tried
    again with its route's backoff (raised by the agent runtime between steps)."""
