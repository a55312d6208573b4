"""Bad arguments to watch_folder: a CommandError that says what is wrong, before anything is
watched or stored."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from events.models import Event, Source

pytestmark = pytest.mark.django_db


def error_of(*args: str) -> str:
    """The CommandError's message for these arguments."""
    with pytest.raises(CommandError) as error:
        call_command("watch_folder", *args)
    return str(error.value)


def test_a_missing_folder_is_refused(tmp_path: Path, folder_source: Source) -> None:
    missing = tmp_path / "nope"
    assert error_of(str(missing), "--source=inbox") == f"{missing} does not exist"


def test_a_file_instead_of_a_folder_is_refused(tmp_path: Path, folder_source: Source) -> None:
    path = tmp_path / "a.csv"
    path.write_text("x")
    assert error_of(str(path), "--source=inbox") == f"{path} is not a directory"


def test_an_unknown_source_is_refused_with_how_to_create_it(tmp_path: Path, db: None) -> None:
    assert error_of(str(tmp_path), "--source=inbox") == (
        "source 'inbox' does not exist "
        "(create it: manage.py create_source --slug inbox --kind folder)"
    )


def test_a_disabled_source_is_refused(tmp_path: Path, db: None) -> None:
    Source.objects.create(slug="inbox", kind="folder", enabled=False)
    assert error_of(str(tmp_path), "--source=inbox") == "source 'inbox' is disabled"


def test_a_source_of_another_kind_is_refused(tmp_path: Path, hmac_source: Source) -> None:
    assert error_of(str(tmp_path), "--source=shop") == (
        "source 'shop' is a hmac source; watch_folder publishes only to folder sources, "
        "so file checksums never collide with another sender's ids"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pattern="], "--pattern '' must not be empty"),
        (
            ["--pattern=sub/*.csv"],
            "--pattern 'sub/*.csv' matches file names, so it cannot contain a path separator "
            "or NUL",
        ),
        (
            ["--pattern=.*"],
            "--pattern '.*' would only match hidden files, which are always ignored",
        ),
        (["--settle=0"], "--settle must be between 0.1 and 3600 seconds"),
        (["--settle=-1"], "--settle must be between 0.1 and 3600 seconds"),
        (["--settle=nan"], "--settle must be between 0.1 and 3600 seconds"),
        (["--rescan=0.5"], "--rescan must be between 1 and 86400 seconds"),
    ],
)
def test_bad_options_are_refused(
    tmp_path: Path, folder_source: Source, args: list[str], message: str
) -> None:
    (tmp_path / "a.csv").write_text("x")
    assert error_of(str(tmp_path), "--source=inbox", *args) == message
    assert not Event.objects.exists()


def test_create_source_makes_a_folder_source_and_says_how_to_watch(db: None) -> None:
    out = StringIO()
    call_command("create_source", "--slug=inbox", "--kind=folder", stdout=out, stderr=StringIO())
    assert out.getvalue() == "manage.py watch_folder PATH --source inbox\n"
    source = Source.objects.get()
    assert (source.slug, source.kind, source.secrets, source.enabled) == (
        "inbox",
        "folder",
        [],
        True,
    )
