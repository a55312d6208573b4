"""Built-in handlers and agents. Each lives in its own module or package here."""

from . import demo  # noqa: F401
