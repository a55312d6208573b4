"""The settle rule, names and patterns, and hashing: plain functions, no database."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from events.folders import (
    HASH_CHUNK,
    Settler,
    Snapshot,
    is_candidate,
    pattern_problem,
    sha256_file,
)

A = Path("/in/a.csv")
B = Path("/in/b.csv")


class FakeStat:
    """What stat returns for each path; a missing path is a vanished file."""

    def __init__(self) -> None:
        self.files: dict[Path, Snapshot] = {}

    def set(self, path: Path, size: int, mtime_ns: int = 1, inode: int = 7) -> None:
        self.files[path] = Snapshot(size=size, mtime_ns=mtime_ns, inode=inode)

    def __call__(self, path: Path) -> Snapshot | None:
        return self.files.get(path)


def test_a_file_settles_only_after_settle_seconds_without_change() -> None:
    # given
    stat, settler = FakeStat(), Settler(settle=2.0)
    stat.set(A, size=10)
    settler.note(A)
    # when / then: first sight starts the clock, even for an old file
    assert settler.check(100.0, stat) == ([], [])
    assert settler.check(101.9, stat) == ([], [])
    assert settler.check(102.0, stat) == ([(A, Snapshot(10, 1, 7))], [])
    assert len(settler) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"size": 20},
        {"size": 10, "mtime_ns": 2},  # rewritten in place with the same length
        {"size": 10, "inode": 8},  # replaced by another file of the same size and mtime
    ],
    ids=["grew", "mtime", "replaced"],
)
def test_any_change_restarts_the_clock(change: dict[str, int]) -> None:
    stat, settler = FakeStat(), Settler(settle=2.0)
    stat.set(A, size=10)
    settler.note(A)
    settler.check(100.0, stat)
    # when it changes just before it would have settled
    stat.set(A, **change)
    assert settler.check(101.5, stat) == ([], [])
    # then it needs settle seconds from the change
    assert settler.check(103.4, stat) == ([], [])
    assert settler.check(103.5, stat)[0] == [(A, stat(A))]


def test_a_file_that_vanishes_before_settling_is_dropped() -> None:
    stat, settler = FakeStat(), Settler(settle=2.0)
    stat.set(A, size=10)
    stat.set(B, size=5)
    settler.note(A)
    settler.note(B)
    settler.check(100.0, stat)
    # when
    del stat.files[A]
    # then
    assert settler.check(101.0, stat) == ([], [A])
    assert settler.check(102.0, stat) == ([(B, Snapshot(5, 1, 7))], [])
    assert len(settler) == 0


def test_noting_a_pending_file_again_keeps_its_clock() -> None:
    stat, settler = FakeStat(), Settler(settle=2.0)
    stat.set(A, size=10)
    settler.note(A)
    settler.check(100.0, stat)
    settler.note(A)  # another inotify event, nothing changed
    assert settler.check(102.0, stat) == ([(A, Snapshot(10, 1, 7))], [])


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("a.csv", True),
        ("sub/a.csv", True),
        ("a.txt", False),
        ("A.CSV", False),  # case-sensitive
        (".a.csv", False),
        (".cache/a.csv", False),
        ("a.csv.tmp", False),
        ("a.csv.part", False),
        ("a.tmp.csv", True),
    ],
)
def test_which_names_are_candidates(relative: str, expected: bool) -> None:
    root = Path("/in")
    assert is_candidate(root / relative, root, "*.csv") is expected


def test_a_path_outside_the_folder_is_never_a_candidate() -> None:
    assert is_candidate(Path("/elsewhere/a.csv"), Path("/in"), "*") is False
    assert is_candidate(Path("/in"), Path("/in"), "*") is False


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("*.csv", None),
        ("report-[0-9]*.json", None),
        ("", "must not be empty"),
        ("  ", "must not be empty"),
        ("sub/*.csv", "matches file names, so it cannot contain a path separator or NUL"),
        ("a\x00", "matches file names, so it cannot contain a path separator or NUL"),
        (".*", "would only match hidden files, which are always ignored"),
    ],
)
def test_pattern_problems(pattern: str, problem: str | None) -> None:
    assert pattern_problem(pattern) == problem


def test_a_file_larger_than_one_chunk_is_hashed_whole(tmp_path: Path) -> None:
    content = os.urandom(HASH_CHUNK * 2 + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(content)
    assert sha256_file(path) == hashlib.sha256(content).hexdigest()


def test_hashing_stops_between_chunks_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (HASH_CHUNK * 3))
    reads: list[int] = []

    def stopping() -> bool:
        reads.append(1)
        return len(reads) == 2

    assert sha256_file(path, stopping) is None
    assert len(reads) == 2  # the third chunk was never read
