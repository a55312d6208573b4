"""Files that land in a folder become ``file.created`` events (manage.py watch_folder).

Three decisions shape this module:

- The folder itself is the truth, not the notifications. watchdog (inotify on Linux) says
  quickly that something changed, but inotify drops events when its queue overflows, sees
  nothing of writes made on another host of a network filesystem, and misses files written into
  a subdirectory before its watch is added. So a scan at start picks up what arrived while the
  watcher was down, and a periodic rescan catches what notifications missed; events only make
  us look sooner.
- A file is published only after its size and mtime have stayed the same for ``settle``
  seconds of our own observation (its mtime is not trusted: ``cp -p`` sets an old one), and it
  is stat'ed again after hashing: a file still being written is never published half-written.
- The external id is the sha256 of the content, so publish()'s per-source dedupe turns a
  restart, a touch, or a second watcher on the same folder into a no-op.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from django.db import DatabaseError, close_old_connections, connection

from .models import Source
from .publish import PublishError, publish

log = logging.getLogger("switchyard.folders")

SOURCE_KIND = "folder"
EVENT_TYPE = "file.created"
# Names a writer uses while a file is incomplete (its final name comes with a rename).
TEMPORARY_SUFFIXES = (".tmp", ".part")
# Read this much at a time: a file of any size is hashed in constant memory.
HASH_CHUNK = 1024 * 1024
EXTERNAL_ID_PREFIX = "sha256:"

Report = Callable[[str], None]
Clock = Callable[[], float]
StopCheck = Callable[[], bool]


class FolderGone(Exception):
    """The watched folder itself was removed or replaced by something that is not a folder."""


@dataclass(frozen=True)
class Snapshot:
    """What stat says about a file; a file has settled when this stops changing."""

    size: int
    mtime_ns: int
    inode: int


def snapshot(path: Path) -> Snapshot | None:
    """The file's snapshot, or None if it is gone or not a regular file (a directory, a
    symlink, a socket): symlinks are not followed, so nothing outside the folder is read."""
    try:
        st = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return Snapshot(size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino)


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot select file names, or None if it can."""
    if not pattern.strip():
        return "must not be empty"
    if "/" in pattern or os.sep in pattern or "\x00" in pattern:
        return "matches file names, so it cannot contain a path separator or NUL"
    if pattern.startswith("."):
        return "would only match hidden files, which are always ignored"
    return None


def is_candidate(path: Path, root: Path, pattern: str) -> bool:
    """Whether a path under ``root`` may become an event: not hidden (nor inside a hidden
    directory), not a temporary name, and matching ``pattern`` (case-sensitive)."""
    try:
        relative = path.relative_to(root)
    except ValueError:
        return False
    if not relative.parts or any(part.startswith(".") for part in relative.parts):
        return False
    name = path.name
    return not name.endswith(TEMPORARY_SUFFIXES) and fnmatchcase(name, pattern)


def display(path: Path, root: Path) -> str:
    """A path for progress lines: relative, and printable even if the name is not UTF-8."""
    return os.fsencode(path.relative_to(root)).decode("utf-8", "backslashreplace")


def sha256_file(path: Path, stopping: StopCheck = lambda: False) -> str | None:
    """Hash in chunks, so a file bigger than memory is fine; None if asked to stop midway
    (the file is hashed again at the next start)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
            if stopping():
                return None
    return digest.hexdigest()


@dataclass
class _Seen:
    snapshot: Snapshot | None
    since: float


class Settler:
    """Which files have stopped changing. Pure bookkeeping: the clock and stat are passed in,
    so the rule is tested without waiting.

    A noted file is stat'ed at every check. Any change of size, mtime or inode restarts its
    clock; once unchanged for ``settle`` seconds it is returned as settled and forgotten. A
    file that vanishes is returned as vanished and forgotten.
    """

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self._pending: dict[Path, _Seen] = {}

    def note(self, path: Path) -> None:
        # A file already pending keeps its clock: the next check decides whether it changed.
        self._pending.setdefault(path, _Seen(snapshot=None, since=0.0))

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: Path) -> bool:
        return path in self._pending

    def paths(self) -> list[Path]:
        return list(self._pending)

    def check(
        self, now: float, stat_file: Callable[[Path], Snapshot | None] = snapshot
    ) -> tuple[list[tuple[Path, Snapshot]], list[Path]]:
        settled: list[tuple[Path, Snapshot]] = []
        vanished: list[Path] = []
        for path, seen in list(self._pending.items()):
            current = stat_file(path)
            if current is None:
                del self._pending[path]
                vanished.append(path)
            elif current != seen.snapshot:
                self._pending[path] = _Seen(snapshot=current, since=now)
            elif now - seen.since >= self.settle:
                del self._pending[path]
                settled.append((path, current))
        return settled, vanished


@dataclass
class Totals:
    published: int = 0
    duplicates: int = 0
    skipped: int = 0


@dataclass
class FolderWatcher:
    """Turns settled files under ``root`` into events of ``source``.

    Runs on one thread: watchdog's thread only puts paths on ``inbox``, so database work
    never happens outside the main thread.
    """

    source: Source
    root: Path
    pattern: str = "*"
    recursive: bool = False
    settle: float = 2.0
    report: Report = print
    clock: Clock = time.monotonic
    stopping: StopCheck = lambda: False
    inbox: queue.SimpleQueue[str] = field(default_factory=queue.SimpleQueue)
    totals: Totals = field(default_factory=Totals)

    def __post_init__(self) -> None:
        self.settler = Settler(self.settle)
        # Files handled (published or found already published) as of this snapshot: not
        # hashed again until they change, so a rescan costs one stat per file.
        self.handled: dict[Path, Snapshot] = {}

    # --- finding files ----------------------------------------------------------------------

    def scan(self, top: Path | None = None) -> int:
        """Note every candidate under ``top`` (default: the whole folder) that is new or
        changed since it was handled; returns how many were noted."""
        top = top or self.root
        noted = 0
        present: set[Path] = set()
        try:
            for path in self._files(top):
                if not is_candidate(path, self.root, self.pattern):
                    continue
                present.add(path)
                current = snapshot(path)
                if current is not None and self.handled.get(path) != current:
                    self.settler.note(path)
                    noted += 1
        except (FileNotFoundError, NotADirectoryError):
            raise FolderGone(f"{self.root} is no longer a directory") from None
        if top == self.root:
            for gone in set(self.handled) - present:
                del self.handled[gone]
        return noted

    def _files(self, top: Path) -> Iterable[Path]:
        if not self.recursive:
            if top != self.root:
                return
            with os.scandir(top) as entries:
                yield from (Path(e.path) for e in entries)
            return
        if not self.root.is_dir():
            raise FileNotFoundError(self.root)  # os.walk would just yield nothing
        for dirpath, dirnames, filenames in os.walk(top):
            # Hidden directories are never entered (.git, .sync, an editor's state).
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            yield from (Path(dirpath, name) for name in filenames)

    def notice(self, raw: str) -> None:
        """A path watchdog reported. A new directory is scanned (inotify watches it only
        from the moment it is added, so files written into it just before are missed)."""
        path = Path(raw)
        if path in self.settler or path.is_symlink():
            # Pending already (a growing file sends one event per write): the next check
            # looks at it anyway.
            return
        if path.is_dir():
            if self.recursive and path != self.root and is_candidate_dir(path, self.root):
                self.scan(path)
        elif is_candidate(path, self.root, self.pattern) and snapshot(path) is not None:
            self.settler.note(path)

    # --- publishing -------------------------------------------------------------------------

    def step(self) -> None:
        """Take what watchdog reported, then publish every file that has settled."""
        while True:
            try:
                self.notice(self.inbox.get_nowait())
            except queue.Empty:
                break
        settled, vanished = self.settler.check(self.clock())
        for path in vanished:
            self.handled.pop(path, None)
            self.report(f"gone before it settled: {display(path, self.root)}")
        for i, (path, seen) in enumerate(settled):
            if self.stopping():
                # Counted as still settling in the summary; the next start scans them.
                for later, _ in settled[i:]:
                    self.settler.note(later)
                return
            self._publish(path, seen)

    def _publish(self, path: Path, seen: Snapshot) -> None:
        name = display(path, self.root)
        try:
            digest = sha256_file(path, self.stopping)
        except (FileNotFoundError, NotADirectoryError):
            self.report(f"gone before it settled: {name}")
            return
        except OSError as exc:
            # Unreadable (permissions): skipped until it changes, not retried every tick.
            self.handled[path] = seen
            self.totals.skipped += 1
            self.report(f"skipped {name}: cannot read it ({exc.strerror or exc})")
            return
        if digest is None:
            return
        if snapshot(path) != seen:
            # Written to while we hashed it: it has not settled after all.
            self.settler.note(path)
            return
        payload: dict[str, Any] = {
            "path": str(path),
            "name": path.name,
            "size": seen.size,
            "sha256": digest,
            "modified_at": datetime.fromtimestamp(seen.mtime_ns / 1e9, tz=UTC).isoformat(),
        }
        try:
            if not connection.in_atomic_block:
                # A long-lived process: replace a connection that broke (or aged out) while
                # we waited, as Django does between requests.
                close_old_connections()
            result = publish(
                source=self.source,
                type=EVENT_TYPE,
                payload=payload,
                external_id=EXTERNAL_ID_PREFIX + digest,
            )
        except PublishError as exc:
            # A name that is not valid UTF-8 cannot be stored; it will not become valid later.
            self.handled[path] = seen
            self.totals.skipped += 1
            self.report(f"skipped {name}: {exc}")
            return
        except DatabaseError as exc:
            log.error("could not store %s, will retry: %s", name, exc)
            self.report(f"could not store {name} (database error), will retry")
            self.settler.note(path)
            return
        self.handled[path] = seen
        if result.created:
            self.totals.published += 1
            self.report(
                f"published {name} ({seen.size} bytes, sha256 {digest[:12]}) "
                f"as event {result.event.id}"
            )
        else:
            self.totals.duplicates += 1
            self.report(f"already published: {name} is event {result.event.id}")


def is_candidate_dir(path: Path, root: Path) -> bool:
    try:
        return not any(part.startswith(".") for part in path.relative_to(root).parts)
    except ValueError:
        return False
