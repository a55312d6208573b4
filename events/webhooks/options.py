"""The options a webhook kind takes. Each is one key of ``Source.settings``, set in the admin
(the settings JSON) or with ``manage.py create_source --<flag>``, and checked the same way in
both, and again when a request arrives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Why a stored value cannot be used, completing "<key> ..." or "--<flag> ...", or None.
Check = Callable[[Any], "str | None"]


def text(value: Any) -> str | None:
    """A non-empty string (a user id, a name)."""
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def header_name(value: Any) -> str | None:
    """An HTTP header's name; None (not set) is fine."""
    if value is None or (isinstance(value, str) and value.strip() and value.isascii()):
        return None
    return "must be a header name"


def whole_seconds(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return None
        return f"must be a whole number of seconds from {low} to {high}"

    return check


def number_or_text(value: str) -> int | str:
    """The command line's text as an int when it is one; otherwise the text, for the check to
    refuse with its own message."""
    digits = value.removeprefix("-")
    return int(value) if digits.isascii() and digits.isdigit() else value


@dataclass(frozen=True)
class Option:
    """One key of ``Source.settings`` that a kind reads.

    ``flag``: create_source's ``--<flag>`` (default: the key with dashes). ``parse`` turns the
    command line's text into the stored value; ``check`` refuses a stored value the kind cannot
    use (the admin and create_source show its message, a request to a source stored with it is
    answered 503). ``default``: what the kind uses when the key is absent.
    """

    key: str
    help: str
    flag: str = ""
    parse: Callable[[str], Any] = str
    check: Check = text
    default: Any = None

    @property
    def cli_flag(self) -> str:
        return "--" + (self.flag or self.key.replace("_", "-"))

    def value(self, settings: Mapping[str, Any]) -> Any:
        return settings.get(self.key, self.default)

    def problem(self, settings: Mapping[str, Any]) -> str | None:
        """What is wrong with this option in ``settings``, or None; an absent key is fine."""
        if self.key not in settings:
            return None
        why = self.check(settings[self.key])
        return f"{self.key} {why}" if why else None

    def from_command_line(self, value: str) -> Any:
        """The value to store for ``--<flag> value``; ValueError says what is wrong with it,
        after the flag (``must not be empty``)."""
        if not value.strip():
            raise ValueError("must not be empty")
        parsed = self.parse(value.strip())
        why = self.check(parsed)
        if why:
            raise ValueError(why)
        return parsed
