"""Settings owned by an app, declared in that app's own accessor module (``events/conf.py``,
``handlers/conf.py``, a built-in agent's ``conf.py``) rather than in settings.py.

A ``Setting`` is read from Django's settings when the settings module (or a test) sets it, else
from its environment variable, else its default. Its value is checked when read and by the
system checks (``manage.py check``, which ``migrate`` and ``manage.py up`` run too; the web
process and the Celery worker and beat run the same checks when they start): a bad value is
reported with the setting's name and why, and stops the process from starting.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")
Check = Callable[[Any], "str | None"]
TAG = "switchyard"


def text(raw: str) -> str:
    return raw


def integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("not an integer") from None


def number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("not a number") from None


def comma_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def at_least(minimum: float) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "not a number"
        return f"must be at least {minimum}" if value < minimum else None

    return check


def between(minimum: float, maximum: float) -> Check:
    def check(value: Any) -> str | None:
        if (problem := at_least(minimum)(value)) is not None:
            return problem
        return f"must be at most {maximum}" if value > maximum else None

    return check


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


@dataclass(frozen=True)
class Setting(Generic[T]):
    name: str
    # A value, or a function of nothing for a default that depends on the environment.
    default: T | Callable[[], T]
    parse: Callable[[str], T] = text  # type: ignore[assignment]
    check: Check | None = None
    # The environment variable, when it is not the setting's own name.
    env: str = ""

    def get(self) -> T:
        """The value; ImproperlyConfigured (naming the setting and why) when it is bad."""
        value, problem = self._read()
        if problem is not None:
            raise ImproperlyConfigured(problem)
        return value

    def problem(self) -> str | None:
        return self._read()[1]

    def raw(self) -> T:
        """The value as set, before ``check`` judges it (for an owner that reports the problem
        in its own words when it uses the value)."""
        value, problem = self._read(checked=False)
        if problem is not None:
            raise ImproperlyConfigured(problem)
        return value

    def _default(self) -> T:
        return self.default() if callable(self.default) else self.default

    def _read(self, *, checked: bool = True) -> tuple[T, str | None]:
        if hasattr(settings, self.name):
            value: T = getattr(settings, self.name)
            shown = f"{self.name}={value!r}"
        else:
            variable = self.env or self.name
            raw = os.environ.get(variable, "")
            if not raw.strip():
                return self._default(), None
            shown = f"{variable}={raw!r}"
            try:
                value = self.parse(raw.strip())
            except (ValueError, ImproperlyConfigured) as exc:
                return self._default(), f"{shown}: {exc}"
        why = self.check(value) if checked and self.check is not None else None
        return value, None if why is None else f"{shown}: {why}"


_registered: set[str] = set()


def register(owner: str, declared: Iterable[Setting[Any]]) -> None:
    """Report ``owner``'s bad settings among the system checks (error ``switchyard.E001``)."""
    declared = tuple(declared)
    if owner in _registered:
        return
    _registered.add(owner)

    def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
        return [
            checks.Error(problem, hint=f"a setting of {owner}", id="switchyard.E001")
            for setting in declared
            if (problem := setting.problem()) is not None
        ]

    check_settings.__name__ = f"check_{owner.replace('.', '_')}_settings"
    checks.register(check_settings, TAG)


def refuse_bad_settings() -> None:
    """Raise ImproperlyConfigured with every bad setting: for processes Django's own commands do
    not check (the web server's workers, Celery's worker and beat)."""
    problems = [
        message.msg for message in checks.run_checks(tags=[TAG]) if message.level >= checks.ERROR
    ]
    if problems:
        raise ImproperlyConfigured("; ".join(problems))
