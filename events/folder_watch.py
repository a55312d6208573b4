"""Watching a folder: watchdog's notifications (inotify, else polling) handed to a
FolderWatcher (events.folders), and the main loop of ``manage.py watch_folder``."""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from .folders import FolderWatcher

log = logging.getLogger("switchyard.folders")


class Forward(FileSystemEventHandler):
    """Runs on watchdog's thread: only hands paths over to the main thread."""

    def __init__(self, inbox: queue.SimpleQueue[str]) -> None:
        self.inbox = inbox

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        path = event.dest_path if event.event_type == "moved" else event.src_path
        self.inbox.put(os.fsdecode(path))


def start_observer(watcher: FolderWatcher, *, polling: bool = False) -> tuple[BaseObserver, str]:
    """Start watchdog on the folder: inotify where it works, else polling (no inotify, or its
    watch or instance limit reached). Returns the observer and which kind it is."""
    handler = Forward(watcher.inbox)
    if not polling:
        native = Observer()
        try:
            native.schedule(handler, str(watcher.root), recursive=watcher.recursive)
            native.start()
        except OSError as exc:
            log.warning("native file notifications unavailable (%s); polling instead", exc)
            watcher.report(f"native file notifications unavailable ({exc}); polling instead")
        else:
            return native, type(native).__name__.removesuffix("Observer").lower() or "native"
    poller = PollingObserver(timeout=min(1.0, watcher.settle))
    poller.schedule(handler, str(watcher.root), recursive=watcher.recursive)
    poller.start()
    return poller, "polling"


def watch(
    watcher: FolderWatcher,
    observer: BaseObserver,
    *,
    rescan: float,
    tick: float,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The main loop, until ``watcher.stopping()``: a scan at start (files that arrived while
    nothing watched), then publish what settles and rescan every ``rescan`` seconds. Short
    sleeps rather than an Event.wait, so a signal handler can set the stop flag safely."""
    found = watcher.scan()
    watcher.report(f"found {found} file(s) to check at start")
    next_scan = watcher.clock() + rescan
    observer_died = False
    while not watcher.stopping():
        watcher.step()
        if watcher.clock() >= next_scan:
            watcher.scan()
            next_scan = watcher.clock() + rescan
        if not observer_died and not observer.is_alive() and not watcher.stopping():
            # watchdog's thread died on an error it could not recover from: the rescan still
            # finds every file, only later.
            observer_died = True
            log.warning("file notifications stopped; relying on the rescan every %s s", rescan)
            watcher.report(f"file notifications stopped; relying on the rescan every {rescan} s")
        sleep(tick)
