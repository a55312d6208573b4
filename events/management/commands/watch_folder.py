"""manage.py watch_folder PATH --source SLUG [--pattern GLOB]: publish a file.created event
for every file that lands in PATH, once it has stopped growing. Runs until SIGTERM or Ctrl-C.
The logic lives in events.folders."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.folder_watch import start_observer, watch
from events.folders import SOURCE_KIND, FolderGone, FolderWatcher, pattern_problem
from events.models import Source

from ._sources import source_of_kind

MIN_SETTLE = 0.1
MIN_RESCAN = 1.0


class Command(BaseCommand):
    help = (
        "Watch a folder and publish a file.created event (path, name, size, sha256) for each "
        "file once it has stopped growing. Files already there are picked up at start; a file "
        "whose content was published before is not published again. Stops on SIGTERM/Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the folder to watch")
        parser.add_argument(
            "--source", required=True, help=f"slug of a source of kind {SOURCE_KIND}"
        )
        parser.add_argument(
            "--pattern", default="*", help="glob on file names, case-sensitive (default *)"
        )
        parser.add_argument("--recursive", action="store_true", help="watch subfolders too")
        parser.add_argument(
            "--settle",
            type=float,
            default=2.0,
            help="seconds a file's size and mtime must stay unchanged (default 2)",
        )
        parser.add_argument(
            "--rescan",
            type=float,
            default=60.0,
            help="seconds between full rescans, the backstop for missed notifications (60)",
        )
        parser.add_argument(
            "--polling",
            action="store_true",
            help="poll instead of inotify (network filesystems, where inotify sees nothing)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        root = Path(opts["path"]).expanduser()
        if not root.exists():
            raise CommandError(f"{opts['path']} does not exist")
        if not root.is_dir():
            raise CommandError(f"{opts['path']} is not a directory")
        if not os.access(root, os.R_OK | os.X_OK):
            raise CommandError(f"{opts['path']} cannot be read by this user")
        root = root.resolve()
        problem = pattern_problem(opts["pattern"])
        if problem:
            raise CommandError(f"--pattern {opts['pattern']!r} {problem}")
        settle, rescan = opts["settle"], opts["rescan"]
        if not MIN_SETTLE <= settle <= 3600:
            raise CommandError(f"--settle must be between {MIN_SETTLE} and 3600 seconds")
        if not MIN_RESCAN <= rescan <= 86400:
            raise CommandError(f"--rescan must be between {MIN_RESCAN:g} and 86400 seconds")
        source = self._source(opts["source"])

        stop: list[int] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.append(signum)

        watcher = FolderWatcher(
            source=source,
            root=root,
            pattern=opts["pattern"],
            recursive=opts["recursive"],
            settle=settle,
            report=self._progress,
            stopping=lambda: bool(stop),
        )
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            observer, kind = start_observer(watcher, polling=opts["polling"])
            self.stdout.write(
                f"watching {root} for {opts['pattern']!r} "
                f"({'with' if opts['recursive'] else 'without'} subfolders) as source "
                f"{source.slug}: settle {settle:g} s, rescan every {rescan:g} s, {kind} observer"
            )
            try:
                watch(watcher, observer, rescan=rescan, tick=min(0.2, settle / 4))
            except FolderGone as exc:
                raise CommandError(str(exc)) from None
            finally:
                observer.stop()
                observer.join(timeout=10)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        totals = watcher.totals
        self.stdout.write(
            f"stopped: {totals.published} published, {totals.duplicates} already published, "
            f"{totals.skipped} skipped, {len(watcher.settler)} still settling"
        )

    def _progress(self, line: str) -> None:
        # Flushed line by line: stdout is often a file or a pipe, where Python buffers.
        self.stdout.write(line)
        self.stdout.flush()

    def _source(self, slug: str) -> Source:
        return source_of_kind(
            slug,
            SOURCE_KIND,
            why_only=f"watch_folder publishes only to {SOURCE_KIND} sources, so file checksums "
            "never collide with another sender's ids",
        )
