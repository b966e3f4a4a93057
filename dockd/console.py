"""The live view for a person at the dock: one row per camera (rich), fed by progress
callbacks from the workers. Only used when stdout is a terminal; logs then go to stderr.

It says what is true now, not what was true at the last callback: the table is drawn afresh
at every refresh, so a camera that stopped sending shows as stalled (since when), a pause
before a retry counts down, and a rate and an ETA appear only while bytes arrive.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dockd.ingest import Progress

#: no byte for this long: no rate, no ETA (they would be guesses)
MOVING_S = 1.0
#: no byte for this long while transferring: the camera is stalled (a USB transfer timeout
#: or the camera's own pause); the row says since when
STALLED_AFTER_S = 2.0
#: the rate is taken over this last stretch of samples
RATE_WINDOW_S = 3.0
#: how a session's outcome reads
OUTCOMES = {"complete": "done", "incomplete": "failed", "listing_refused": "failed",
            "device_error": "failed", "internal_error": "failed",
            "camera_gone": "camera left", "interrupted": "interrupted"}
#: local steps a custodian reports (Hooks.beat), as a person reads them
STEPS = {"proving": "verifying", "checking resume": "checking resume",
         "describing": "verifying", "waiting for another session": "waiting for another session"}


@dataclass
class _Row:
    progress: Progress
    #: (time.monotonic, bytes done) of the current attempt, for the rate
    samples: deque[tuple[float, int]] = field(default_factory=deque)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else (
        f"{s // 60}:{s % 60:02d}")


def rate(samples: deque[tuple[float, int]], now: float) -> float | None:
    """Bytes per second over the last RATE_WINDOW_S, or None without enough to go on."""
    recent = [(t, d) for t, d in samples if now - t <= RATE_WINDOW_S]
    if len(recent) < 2 or recent[-1][0] - recent[0][0] < 0.2:
        return None
    return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])


def describe(p: Progress, bytes_per_s: float | None, now: float, wall: datetime
             ) -> tuple[str, str, str]:
    """(state, rate, ETA) of one camera, as the row shows them."""
    still = now - p.moved_at
    if p.state == "transferring":
        if still >= STALLED_AFTER_S:
            since = (wall - timedelta(seconds=still)).strftime("%H:%M:%S")
            return f"stalled since {since} ({_duration(still)})", "", ""
        if still < MOVING_S and bytes_per_s:
            left = max(0, p.total - p.done) / bytes_per_s
            return "transferring", f"{bytes_per_s / 1e6:.1f} MB/s", _duration(left)
        return "transferring", "", ""
    if p.state == "retrying":
        wait = max(0.0, (p.retry_at or now) - now)
        return f"retrying in {wait:.0f} s — {p.reason}", "", ""
    if p.state in OUTCOMES:
        label = OUTCOMES[p.state]
        return (f"{label} — {p.reason}" if p.reason and label != "done" else label), "", ""
    return STEPS.get(p.state, p.state), "", ""


class LiveConsole:
    def __init__(self, console: Console | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._console = console or Console()
        self._rows: dict[int, _Row] = {}
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._clock = clock

    def __enter__(self) -> LiveConsole:
        # get_renderable: every refresh draws the table anew, callbacks or not
        self._live = Live(console=self._console, refresh_per_second=4, transient=False,
                          get_renderable=self.table)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.__exit__(*exc)

    def on_progress(self, progress: Progress) -> None:
        """From a worker thread: keep a copy (the worker goes on changing its own)."""
        now = self._clock()
        with self._lock:
            row = self._rows.get(progress.slot)
            if row is None or row.progress.serial != progress.serial:
                row = self._rows[progress.slot] = _Row(progress)
            old = row.progress
            if (old.recording, old.started) != (progress.recording, progress.started):
                row.samples.clear()  # a new attempt: its own rate
            if progress.state == "transferring" and (
                    not row.samples or row.samples[-1][1] != progress.done):
                row.samples.append((now, progress.done))
                while len(row.samples) > 2 and now - row.samples[0][0] > RATE_WINDOW_S:
                    row.samples.popleft()
            row.progress = replace(progress)

    def table(self) -> Table:
        now, wall = self._clock(), datetime.now().astimezone()
        with self._lock:
            progress = sorted(((r.progress, rate(r.samples, now)) for r in self._rows.values()),
                              key=lambda x: x[0].slot)
        rows: list[list[str | Text]] = []
        for p, bytes_per_s in progress:
            state, shown_rate, eta = describe(p, bytes_per_s, now, wall)
            # Text(): serials and names come from devices, never read them as markup
            rows.append([str(p.slot), Text(p.serial),
                         f"{p.file_index} of {p.file_count}" if p.file_count else "-",
                         Text(p.recording or "-"),
                         f"{_mb(p.done)} of {_mb(p.total)}" if p.total else "-",
                         shown_rate or "-", eta or "-",
                         f"{p.battery_percent:.0f}%" if p.battery_percent is not None else "-",
                         Text(state)])
        shown = fit(rows, self._console.width)
        # narrower than even serial, name and state: fold them onto more lines, never crop
        whole = need(rows, shown) <= self._console.width
        table = Table(title="dockd — docked cameras")
        for i in shown:
            name, justify, _drop, wraps = COLUMNS[i]
            if wraps or not whole:  # the state and its reason: wraps, never cut
                table.add_column(name, justify=justify, overflow="fold",  # type: ignore[arg-type]
                                 min_width=STATE_MIN)
            else:  # one line each, whole: a serial or a name is never cut
                table.add_column(name, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                                 min_width=_width(rows, i))
        for row in rows:
            table.add_row(*(row[i] for i in shown))
        return table


#: (header, justify, drop order when the terminal is narrow (0 = never), wraps)
COLUMNS = (("slot", "right", 0, False), ("serial", "left", 0, False),
           ("file", "right", 0, False), ("recording", "left", 0, False),
           ("MB", "right", 1, False), ("rate", "right", 2, False), ("ETA", "right", 3, False),
           ("battery", "right", 4, False), ("state", "left", 0, True))
#: the state column gets at least this much before lower-priority columns give way
STATE_MIN = 20


def _width(rows: list[list[str | Text]], i: int) -> int:
    cells = [cell.plain if isinstance(cell, Text) else cell for cell in (r[i] for r in rows)]
    return max([len(COLUMNS[i][0]), *map(len, cells)])


def fit(rows: list[list[str | Text]], width: int) -> list[int]:
    """Columns shown at `width`: battery, ETA, rate, MB give way (in that order) before the
    serial, the recording's name or the state are ever squeezed."""
    shown = list(range(len(COLUMNS)))
    for i in sorted((i for i, c in enumerate(COLUMNS) if c[2]), key=lambda i: -COLUMNS[i][2]):
        if need(rows, shown) <= width:
            break
        shown.remove(i)
    return shown


def need(rows: list[list[str | Text]], shown: list[int]) -> int:
    """Characters the columns need: one space of padding each side, rules between and at the
    edges."""
    return sum(STATE_MIN if COLUMNS[i][3] else _width(rows, i) for i in shown) + (
        3 * len(shown) + 1)
