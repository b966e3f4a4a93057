"""Reload when an administrator saves the config or a drivers.d file — the same path as
SIGHUP (watchdog's inotify observer only flags the request; the main loop reloads)."""

from __future__ import annotations

from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from dockd.flags import Flag

log = structlog.get_logger(__name__)


class _Flag(FileSystemEventHandler):
    def __init__(self, wanted: set[Path], dropin_dir: Path, flag: Flag) -> None:
        self.wanted = wanted
        self.dropin_dir = dropin_dir
        self.flag = flag

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("modified", "created", "moved", "deleted", "closed"):
            return
        paths = [Path(str(event.src_path))]
        if getattr(event, "dest_path", ""):
            paths.append(Path(str(event.dest_path)))
        for path in paths:
            if path in self.wanted or (path.parent == self.dropin_dir and path.suffix == ".toml"):
                self.flag.set()
                return


class ConfigWatcher:
    """Watches the config file's directory and the drop-in directory (those that exist)."""

    def __init__(self, config_path: Path | None, dropin_dir: Path,
                 flag: Flag) -> None:
        wanted = {config_path.resolve()} if config_path is not None else set()
        self._handler = _Flag(wanted, dropin_dir.resolve(), flag)
        self._dirs = {p.parent for p in wanted} | {dropin_dir.resolve()}
        self._observer = Observer()

    def start(self) -> None:
        watched = 0
        for directory in sorted(self._dirs):
            if directory.is_dir():
                self._observer.schedule(self._handler, str(directory), recursive=False)
                watched += 1
        if watched:
            self._observer.start()
        log.debug("config_watch_started", directories=[str(d) for d in sorted(self._dirs)])

    def stop(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)
