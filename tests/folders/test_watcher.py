"""FolderWatcher in-process, on a real folder and the real database, with a clock the test
moves: scans, rescans, watchdog's notifications, and the files it must skip."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from events.folder_watch import start_observer
from events.folders import FolderGone, FolderWatcher
from events.models import Event, Source
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db

SETTLE = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lines() -> list[str]:
    return []


MakeWatcher = Callable[..., FolderWatcher]


@pytest.fixture
def make_watcher(
    tmp_path: Path, folder_source: Source, clock: Clock, lines: list[str]
) -> MakeWatcher:
    def make(**kwargs: Any) -> FolderWatcher:
        options: dict[str, Any] = {
            "source": folder_source,
            "root": tmp_path.resolve(),
            "settle": SETTLE,
            "clock": clock,
            "report": lines.append,
        }
        return FolderWatcher(**{**options, **kwargs})

    return make


def settle(watcher: FolderWatcher, clock: Clock) -> None:
    """One check to see the files, one after the settle time to publish them."""
    watcher.step()
    clock.advance(SETTLE)
    watcher.step()


def names() -> list[str]:
    return sorted(Event.objects.values_list("payload__name", flat=True))


def test_a_file_no_notification_reported_is_found_by_the_rescan(
    tmp_path: Path, make_watcher: MakeWatcher, clock: Clock
) -> None:
    # given a watcher that has scanned an empty folder, and no observer at all
    watcher = make_watcher()
    assert watcher.scan() == 0
    (tmp_path / "missed.csv").write_text("x")
    settle(watcher, clock)
    assert names() == []
    # when the rescan runs
    assert watcher.scan() == 1
    settle(watcher, clock)
    # then
    assert names() == ["missed.csv"]


def test_a_rescan_does_not_hash_unchanged_files_again(
    tmp_path: Path, make_watcher: MakeWatcher, clock: Clock, lines: list[str]
) -> None:
    (tmp_path / "a.csv").write_text("x")
    watcher = make_watcher()
    watcher.scan()
    settle(watcher, clock)
    assert watcher.totals.published == 1
    # when / then: unchanged files are not noted again
    assert watcher.scan() == 0
    # when it is rewritten with other content
    (tmp_path / "a.csv").write_text("y, longer")
    assert watcher.scan() == 1
    settle(watcher, clock)
    # then it is a new event: one per distinct content
    assert Event.objects.count() == 2
    assert watcher.totals.published == 2


def test_same_content_under_another_name_is_a_duplicate(
    tmp_path: Path, make_watcher: MakeWatcher, clock: Clock, lines: list[str]
) -> None:
    (tmp_path / "a.csv").write_text("same")
    (tmp_path / "copy.csv").write_text("same")
    watcher = make_watcher()
    watcher.scan()
    settle(watcher, clock)
    assert Event.objects.count() == 1
    assert (watcher.totals.published, watcher.totals.duplicates) == (1, 1)


def test_a_file_removed_before_it_settles_is_not_published(
    tmp_path: Path, make_watcher: MakeWatcher, clock: Clock, lines: list[str]
) -> None:
    path = tmp_path / "short-lived.csv"
    path.write_text("x")
    watcher = make_watcher()
    watcher.scan()
    watcher.step()
    # when
    path.unlink()
    clock.advance(SETTLE)
    watcher.step()
    # then
    assert Event.objects.count() == 0
    assert lines == ["gone before it settled: short-lived.csv"]
    assert len(watcher.settler) == 0


def test_a_file_written_to_while_it_is_hashed_waits_for_the_next_settle(
    tmp_path: Path, make_watcher: MakeWatcher, clock: Clock
) -> None:
    # given a file that is appended to by the time hashing is done
    path = tmp_path / "a.csv"
    path.write_text("first")
    appended: list[bool] = []

    def stopping() -> bool:
        if not appended:
            appended.append(True)
            with path.open("a") as f:
                f.write(" second")
        return False

    watcher = make_watcher(stopping=stopping)
    watcher.scan()
    settle(watcher, clock)
    # then nothing was published, and it is settling again
    assert Event.objects.count() == 0
    assert len(watcher.settler) == 1
    settle(watcher, clock)
    event = Event.objects.get()
    assert event.payload["size"] == len("first second")
    assert event.payload["sha256"] == hashlib.sha256(b"first second").hexdigest()


def test_recursive_watch_finds_nested_files_but_not_hidden_folders(
    tmp_path: Path, make_watcher: MakeWatcher, clock: Clock
) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.csv").write_text("deep")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.csv").write_text("hidden")
    watcher = make_watcher(recursive=True, pattern="*.csv")
    assert watcher.scan() == 1
    settle(watcher, clock)
    assert Event.objects.get().payload["path"] == str((tmp_path / "a/b/deep.csv").resolve())


def test_a_symlink_is_not_followed(tmp_path: Path, make_watcher: MakeWatcher, clock: Clock) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    outside.write_text("secret")
    (tmp_path / "link.csv").symlink_to(outside)
    watcher = make_watcher()
    assert watcher.scan() == 0
    watcher.notice(str(tmp_path / "link.csv"))
    assert len(watcher.settler) == 0


def test_a_name_that_is_not_utf8_is_skipped_with_a_readable_message(
    tmp_path: Path, make_watcher: MakeWatcher, clock: Clock, lines: list[str]
) -> None:
    os.close(os.open(os.fsencode(tmp_path) + b"/caf\xe9.csv", os.O_CREAT | os.O_WRONLY))
    watcher = make_watcher()
    watcher.scan()
    settle(watcher, clock)
    assert Event.objects.count() == 0
    assert lines == [
        "skipped caf\\xe9.csv: payload contains a lone surrogate (\\ud800-\\udfff), "
        "which is not valid Unicode"
    ]
    # and it is not retried until it changes
    assert watcher.scan() == 0


@pytest.mark.parametrize("recursive", [False, True])
def test_the_folder_disappearing_stops_the_watch(
    tmp_path: Path, make_watcher: MakeWatcher, recursive: bool
) -> None:
    root = tmp_path / "inbox"
    root.mkdir()
    watcher = make_watcher(root=root, recursive=recursive)
    root.rmdir()
    with pytest.raises(FolderGone) as gone:
        watcher.scan()
    assert str(gone.value) == f"{root} is no longer a directory"


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_notifications_reach_the_watcher(
    tmp_path: Path, make_watcher: MakeWatcher, clock: Clock, polling: bool
) -> None:
    # given a running observer (inotify, or the polling fallback)
    watcher = make_watcher(settle=0.5)
    observer, kind = start_observer(watcher, polling=polling)
    try:
        assert kind == ("polling" if polling else "inotify")
        # when a file is moved in from a temporary name
        (tmp_path / "upload.csv.part").write_text("done")
        (tmp_path / "upload.csv.part").rename(tmp_path / "upload.csv")
        # then its final name is reported to the main thread
        wait_until(lambda: noted(watcher), what="the new file to be reported")
    finally:
        observer.stop()
        observer.join(timeout=10)
    assert watcher.settler.paths() == [(tmp_path / "upload.csv").resolve()]


def noted(watcher: FolderWatcher) -> int:
    # step() takes what the observer put on the inbox; the clock does not move, so nothing
    # settles here.
    watcher.step()
    return len(watcher.settler)
