"""agents_project.env: strict settings helpers and DATABASE_URL parsing."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from agents_project.env import database_from_url, env_bool, env_float, env_int, env_list

NAME = "SWITCHYARD_UNIT_TEST_VALUE"


SetEnv = Callable[[str], None]


@pytest.fixture
def setenv(monkeypatch: pytest.MonkeyPatch) -> SetEnv:
    """Set NAME for this test; it starts unset."""
    monkeypatch.delenv(NAME, raising=False)

    def set_value(value: str) -> None:
        monkeypatch.setenv(NAME, value)

    return set_value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[("1", True), ("true", True), (" YES ", True), ("on", True)],
        *[("0", False), ("False", False), ("no", False), ("off", False), ("", False)],
    ],
)
def test_env_bool_reads_the_usual_spellings(setenv: SetEnv, raw: str, expected: bool) -> None:
    setenv(raw)
    assert env_bool(NAME, not expected) is expected


def test_env_bool_unset_gives_the_default(setenv: SetEnv) -> None:
    assert env_bool(NAME, True) is True
    assert env_bool(NAME, False) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "tru", "yes please"])
def test_env_bool_refuses_anything_else(setenv: SetEnv, raw: str) -> None:
    setenv(raw)
    with pytest.raises(ImproperlyConfigured, match=re.escape(f"{NAME}={raw!r} is not a boolean")):
        env_bool(NAME, False)


def test_env_int(setenv: SetEnv) -> None:
    assert env_int(NAME, 7) == 7
    setenv(" 42 ")
    assert env_int(NAME, 7, minimum=1) == 42
    setenv("")
    assert env_int(NAME, 7) == 7


@pytest.mark.parametrize("raw", ["ten", "1.5", "1e3", "0x10"])
def test_env_int_refuses_a_non_integer(setenv: SetEnv, raw: str) -> None:
    setenv(raw)
    with pytest.raises(ImproperlyConfigured, match=re.escape(f"{NAME}={raw!r} is not an integer")):
        env_int(NAME, 1)


def test_env_int_refuses_a_value_below_the_minimum(setenv: SetEnv) -> None:
    # unset: the default is checked too
    with pytest.raises(ImproperlyConfigured, match=f"{NAME}=0 is below the minimum of 1"):
        env_int(NAME, 0, minimum=1)
    setenv("-3")
    with pytest.raises(ImproperlyConfigured, match=f"{NAME}=-3 is below the minimum of 1"):
        env_int(NAME, 5, minimum=1)


def test_env_float(setenv: SetEnv) -> None:
    setenv("0.5")
    assert env_float(NAME, 1.0, minimum=0.1) == 0.5
    setenv("fast")
    with pytest.raises(ImproperlyConfigured, match=f"{NAME}='fast' is not a number"):
        env_float(NAME, 1.0)
    setenv("0.01")
    with pytest.raises(ImproperlyConfigured, match=f"{NAME}=0.01 is below the minimum of 0.1"):
        env_float(NAME, 1.0, minimum=0.1)


def test_env_list(setenv: SetEnv) -> None:
    default = ["a"]
    unset = env_list(NAME, default)
    assert unset == ["a"]
    assert unset is not default  # callers may append without changing the default
    setenv(" x.example , ,y.example,")
    assert env_list(NAME, default) == ["x.example", "y.example"]
    setenv("")
    assert env_list(NAME, default) == []


BASE = Path("/srv/switchyard")


def test_sqlite_relative_path_is_under_the_base_dir() -> None:
    db = database_from_url("sqlite:///var/db.sqlite3", base_dir=BASE)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == "/srv/switchyard/var/db.sqlite3"
    assert db["OPTIONS"] == {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }


def test_sqlite_absolute_path() -> None:
    db = database_from_url("sqlite:////tmp/switchyard/db.sqlite3", base_dir=BASE)
    assert db["NAME"] == "/tmp/switchyard/db.sqlite3"


def test_postgres_url_with_user_password_port_and_options() -> None:
    db = database_from_url(
        "postgres://sy%40ops:p%2Fss%3Aword@db.internal:6543/switchyard"
        "?sslmode=require&connect_timeout=5&pool=true",
        base_dir=BASE,
    )
    assert db == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "switchyard",
        "USER": "sy@ops",
        "PASSWORD": "p/ss:word",
        "HOST": "db.internal",
        "PORT": "6543",
        "OPTIONS": {"sslmode": "require", "connect_timeout": "5", "pool": True},
    }


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql"])
def test_postgres_url_minimal(scheme: str) -> None:
    db = database_from_url(f"{scheme}://localhost/app", base_dir=BASE)
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["OPTIONS"]) == (
        "app",
        "",
        "",
        "localhost",
        "",
        {"pool": True},
    )


def test_postgres_url_pool_false_turns_the_pool_off() -> None:
    db = database_from_url("postgres://localhost/app?pool=false", base_dir=BASE)
    assert db["OPTIONS"] == {}


def test_postgres_url_pool_not_a_boolean_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="pool='maybe' is not a boolean"):
        database_from_url("postgres://localhost/app?pool=maybe", base_dir=BASE)


def test_postgres_url_without_a_database_name_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL names no database"):
        database_from_url("postgres://localhost:5432/", base_dir=BASE)


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/app", "db.sqlite3", "sqllite:///db.sqlite3", ""]
)
def test_unsupported_scheme_is_refused(url: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="is not supported"):
        database_from_url(url, base_dir=BASE)
