"""`manage.py watch_folder` as a real process on a real folder, publishing to the test
database."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from events.models import Delivery, Event, Route, Source

from .conftest import WatchProcess

pytestmark = pytest.mark.django_db(transaction=True)

Start = Callable[..., WatchProcess]


def published(path: Path) -> str:
    """How the progress line for a newly published file starts."""
    return f"published {path.name} ({path.stat().st_size} bytes, sha256 "


def summary(published: int, duplicates: int) -> str:
    return (
        f"stopped: {published} published, {duplicates} already published, 0 skipped, "
        "0 still settling"
    )


def test_a_file_written_in_chunks_is_published_once_after_it_stops_growing(
    tmp_path: Path, folder_source: Source, watch_folder: Start
) -> None:
    # given a route for file events, and a watcher on an empty folder
    Route.objects.create(name="files", event_type="file.*", handler="test.always")
    proc = watch_folder(tmp_path, "--source=inbox", "--pattern=*.csv", "--settle=2")
    assert proc.lines()[-1] == "found 0 file(s) to check at start"
    chunks = [os.urandom(256 * 1024) for _ in range(6)]
    path = tmp_path / "orders.csv"

    # when a writer appends one chunk at a time, pausing well under --settle between chunks
    with path.open("wb") as f:
        for chunk in chunks:
            f.write(chunk)
            f.flush()
            time.sleep(0.2)  # the slow writer itself, not a wait for the watcher
            # then nothing is published while the file is still growing
            assert not Event.objects.exists()

    # then it is published once, whole, after it stopped growing
    content = b"".join(chunks)
    digest = hashlib.sha256(content).hexdigest()
    [line] = proc.wait_for(published(path))
    event = Event.objects.get()
    assert (
        line
        == f"published orders.csv ({len(content)} bytes, sha256 {digest[:12]}) as event {event.id}"
    )
    assert (event.source, event.type, event.external_id) == (
        folder_source,
        "file.created",
        f"sha256:{digest}",
    )
    mtime = datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9, tz=UTC).isoformat()
    assert event.payload == {
        "path": str(path.resolve()),
        "name": "orders.csv",
        "size": len(content),
        "sha256": digest,
        "modified_at": mtime,
    }
    # and it entered the pipeline like any other event
    assert list(Delivery.objects.values_list("event", "handler")) == [(event.id, "test.always")]
    assert proc.stop(signal.SIGTERM) == 0
    assert proc.lines()[-1] == summary(1, 0)
    assert Event.objects.count() == 1


def test_files_present_before_start_are_published_and_a_touch_or_restart_does_not_repeat_them(
    tmp_path: Path, folder_source: Source, watch_folder: Start
) -> None:
    # given two files that arrived while nothing was watching
    (tmp_path / "a.csv").write_text("id,total\n1,10\n")
    (tmp_path / "b.csv").write_text("id,total\n2,20\n")

    # when the watcher starts
    proc = watch_folder(tmp_path, "--source=inbox", "--settle=0.5")

    # then both are published
    assert "found 2 file(s) to check at start" in proc.lines()
    proc.wait_for("published ", count=2)
    assert sorted(Event.objects.values_list("payload__name", flat=True)) == ["a.csv", "b.csv"]

    # when one is touched (new mtime, same content)
    os.utime(tmp_path / "a.csv", ns=(1_000_000_000, 1_000_000_000))

    # then it is looked at again and recognised, not published again
    a = Event.objects.get(payload__name="a.csv")
    proc.wait_for(f"already published: a.csv is event {a.id}")
    assert proc.stop(signal.SIGINT) == 0
    assert proc.lines()[-1] == summary(2, 1)

    # when the watcher is restarted, and a third file arrived in between
    (tmp_path / "c.csv").write_text("id,total\n3,30\n")
    again = watch_folder(tmp_path, "--source=inbox", "--settle=0.5")

    # then only the new one is published
    again.wait_for("published c.csv ")
    again.wait_for("already published: ", count=2)
    assert again.stop() == 0
    assert again.lines()[-1] == summary(1, 2)
    assert Event.objects.count() == 3


def test_only_files_matching_the_pattern_are_published(
    tmp_path: Path, folder_source: Source, watch_folder: Start
) -> None:
    # given files and directories that must be left alone, some there before the start
    ignored_before = [".hidden.csv", "notes.txt", "upload.csv.part", "upload.csv.tmp", "A.CSV"]
    for name in ignored_before:
        (tmp_path / name).write_text(name)
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "nested.csv").write_text("not watched without --recursive")
    (tmp_path / "before.csv").write_text("before")
    proc = watch_folder(tmp_path, "--source=inbox", "--pattern=*.csv", "--settle=0.5")

    # when more arrive while it runs, the matching one last
    for name in ["later.txt", ".later.csv", "later.csv.part"]:
        (tmp_path / name).write_text(name)
    (tmp_path / "sub" / "later.csv").write_text("nested")
    (tmp_path / "later.csv").write_text("later")

    # then only the two matching top-level files are published, and nothing else is pending
    proc.wait_for("published ", count=2)
    assert proc.stop() == 0
    assert proc.lines()[-1] == summary(2, 0)
    assert sorted(Event.objects.values_list("payload__name", flat=True)) == [
        "before.csv",
        "later.csv",
    ]
