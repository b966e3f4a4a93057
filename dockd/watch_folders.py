"""Export folders: a vendor's software empties cameras into a folder, one sub-folder per
camera. Each sub-folder of a root a `bus = "folder"` match rule names is a `folder` device.

At start every sub-folder present is reported (ADD); then watchdog's inotify observer
reports sub-folders made (ADD) and removed (REMOVE), and files written in one as a CHANGE
once the folder has been quiet for the rule's `settle_s` (so a recording still being
written is looked at after it settled, not while it grows). Deletions never ask for a look:
dockd's own deletes after a proof would otherwise start a session for nothing.

Symlinked sub-folders are not cameras (nothing outside the root is ever read). The
callbacks run on the observer's and the timer's threads: they only enqueue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from dockd.events import Action, DeviceEvent, FolderRef

log = structlog.get_logger(__name__)

DEFAULT_SETTLE_S = 5.0


@dataclass(frozen=True)
class WatchedRoot:
    root: Path
    settle_s: float = DEFAULT_SETTLE_S


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher, watched: WatchedRoot) -> None:
        self.watcher = watcher
        self.watched = watched

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "") or ""):
            if raw:
                self.watcher.seen(self.watched, Path(str(raw)), event.event_type,
                                  event.is_directory)


class FolderWatcher:
    """Reports camera sub-folders of each watched root: ADD, REMOVE, and CHANGE when quiet."""

    def __init__(self, callback: Callable[[DeviceEvent], None],
                 roots: Iterable[WatchedRoot]) -> None:
        self._callback = callback
        self._roots = list(roots)
        self._lock = threading.Lock()
        self._known: dict[Path, FolderRef] = {}
        self._timers: dict[Path, threading.Timer] = {}
        self._observer = Observer()
        self._stopped = False

    def start(self) -> None:
        for watched in self._roots:
            if not watched.root.is_dir():
                log.warning("export_folder_missing", root=str(watched.root),
                            advice="create it, or fix the folder rule's root")
                continue
            for sub in sorted(watched.root.iterdir()):
                self._appeared(watched, sub)
            self._observer.schedule(_Handler(self, watched), str(watched.root), recursive=True)
        if self._observer.emitters:
            self._observer.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)

    def seen(self, watched: WatchedRoot, path: Path, kind: str, is_dir: bool) -> None:
        """One filesystem event somewhere under a root."""
        try:
            rel = path.relative_to(watched.root)
        except ValueError:
            return
        if not rel.parts:
            return
        camera = watched.root / rel.parts[0]
        if len(rel.parts) == 1 and is_dir and kind in ("created", "moved"):
            self._appeared(watched, camera)
        elif len(rel.parts) == 1 and kind in ("deleted", "moved") and not camera.is_dir():
            self._vanished(camera)
        elif len(rel.parts) > 1 and kind != "deleted":
            self._settle_then_change(watched, camera)

    def _appeared(self, watched: WatchedRoot, sub: Path) -> None:
        if sub.is_symlink() or not sub.is_dir() or sub.name.startswith("."):
            return
        ref = FolderRef(path=str(sub), root=str(watched.root))
        with self._lock:
            if sub in self._known or self._stopped:
                return
            self._known[sub] = ref
        self._callback(DeviceEvent(Action.ADD, ref))

    def _vanished(self, sub: Path) -> None:
        with self._lock:
            ref = self._known.pop(sub, None)
            timer = self._timers.pop(sub, None)
        if timer is not None:
            timer.cancel()
        if ref is not None:
            self._callback(DeviceEvent(Action.REMOVE, ref))

    def _settle_then_change(self, watched: WatchedRoot, sub: Path) -> None:
        """(Re)start the quiet timer of `sub`: one CHANGE once nothing moved for settle_s."""
        with self._lock:
            if self._stopped or sub not in self._known:
                return
            old = self._timers.pop(sub, None)
            timer = threading.Timer(watched.settle_s + 0.5, self._changed, args=(sub,))
            timer.daemon = True
            self._timers[sub] = timer
        if old is not None:
            old.cancel()
        timer.start()

    def _changed(self, sub: Path) -> None:
        with self._lock:
            self._timers.pop(sub, None)
            ref = self._known.get(sub)
        if ref is not None:
            self._callback(DeviceEvent(Action.CHANGE, ref))
