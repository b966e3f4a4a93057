"""The live view for a person at the dock: one row per camera (rich), fed by progress
callbacks from the workers. Only used when stdout is a terminal; logs then go to stderr."""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from dockd.ingest import Progress


def _eta(p: Progress) -> str:
    if p.rate_mb_s <= 0 or p.total <= p.done:
        return "-"
    seconds = (p.total - p.done) / (p.rate_mb_s * 1e6)
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


class LiveConsole:
    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console()
        self._rows: dict[int, Progress] = {}
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._last = 0.0

    def __enter__(self) -> LiveConsole:
        self._live = Live(self._table(), console=self._console, refresh_per_second=4,
                          transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(*exc)

    def on_progress(self, progress: Progress) -> None:
        with self._lock:
            self._rows[progress.slot] = progress
        now = time.monotonic()
        if self._live is not None and now - self._last > 0.2:
            self._last = now
            self._live.update(self._table())

    def _table(self) -> Table:
        table = Table(title="dockd — docked cameras", expand=False)
        for col, justify in (("slot", "right"), ("serial", "left"), ("file", "left"),
                             ("%", "right"), ("MB/s", "right"), ("ETA", "right"),
                             ("battery", "right"), ("state", "left")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        with self._lock:
            rows = sorted(self._rows.values(), key=lambda p: p.slot)
        for p in rows:
            pct = f"{100 * p.done / p.total:.0f}" if p.total else "-"
            battery = f"{p.battery_percent:.0f}%" if p.battery_percent is not None else "-"
            table.add_row(str(p.slot), p.serial, p.recording or "-", pct,
                          f"{p.rate_mb_s:.1f}" if p.rate_mb_s else "-", _eta(p), battery,
                          p.state)
        return table
