"""The live view in a real terminal: `dockd run --once` inside tmux on a dock where one camera
stalls (a USB timeout, then a retry that resumes) and one refuses every read (retries, then
fails), the screen read with `tmux capture-pane` as it changes.

What a person at the dock must be able to trust: a stalled camera says so (since when), with
no speed or ETA; a retry counts down and says why; file n of m and bytes done of total; a rate
and an ETA only while bytes move; the end says done or failed — with the reason."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest
from helpers_ingest import DOCKD, make_env, scenario_toml

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (scripts/setup --test)")

STALLS, FAILS = "NC-LIVE-STALL-0001", "NC-LIVE-BAD-0002"
FIRST, SECOND, BAD = ("20261125_140211_0016.MP4", "20261125_140213_0017.MP4",
                      "20261125_150000_0001.MP4")
SCENARIO = scenario_toml([
    {"serial": STALLS, "slot": 1, "link_mb_s": 2, "recording": [
        {"name": FIRST, "size": 3_000_000, "seed": 1, "started": "2026-11-25T14:02:11Z"},
        {"name": SECOND, "size": 1_000_000, "seed": 2, "started": "2026-11-25T14:02:13Z"}],
     "fault": [{"kind": "stall", "recording": FIRST, "at_byte": 1_048_576, "times": 1}]},
    {"serial": FAILS, "slot": 2, "link_mb_s": 2, "recording": [
        {"name": BAD, "size": 1_000_000, "seed": 3, "started": "2026-11-25T15:00:00Z"}],
     "fault": [{"kind": "read_error", "recording": BAD, "at_byte": 524_288,
                "times": "always"}]},
], dock="dock-live")


def tmux(socket: str, *args: str) -> str:
    assert TMUX is not None
    # the terminal's own size, not one the test runner's environment may carry
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([TMUX, "-L", socket, *args], capture_output=True, text=True,
                          check=True, timeout=10, env=env).stdout


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every distinct screen the live view showed, in order; the last one after exit."""
    env = make_env(tmp_path_factory.mktemp("live"), scenario_text=SCENARIO, ingest={
        # a stall is cut by the 3 s timeout; 2 s pause before each retry
        "transfer_timeout_s": 3.0, "retry_delay_s": 2.0, "max_retries": 1, "chunk_kib": 64})
    text = env.config.read_text().replace('format = "json"', 'format = "console"')
    env.config.write_text(text.replace('level = "info"', 'level = "warning"'))
    socket = f"dockd-live-{os.getpid()}"  # a tmux server of our own, nobody else's
    command = (f"{DOCKD} run --config {env.config} --simulate {env.scenario} "
               f"--sim-state {env.sim_state} --sim-reset --once; echo EXIT=$?; sleep 60")
    tmux(socket, "new-session", "-d", "-s", "live", "-x", "150", "-y", "50", command)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            screen = tmux(socket, "capture-pane", "-p", "-t", "live")
            if not seen or screen != seen[-1]:
                seen.append(screen)
            if "EXIT=" in screen:
                break
            time.sleep(0.1)
    finally:
        tmux(socket, "kill-server")
    assert "EXIT=6" in seen[-1], seen[-1]  # one recording stays on its camera, with a reason
    return seen


def rows(screen: str, serial: str) -> list[str]:
    """The first line of the camera's row in the table (not the log lines above it; and
    whole: a capture can catch rich halfway through redrawing a line)."""
    return [line for line in screen.splitlines()
            if line.startswith("│") and line.rstrip().endswith("│") and serial in line]


def cells(row: str) -> dict[str, str]:
    names = ("slot", "serial", "file", "recording", "MB", "rate", "ETA", "battery", "state")
    return dict(zip(names, (c.strip() for c in row.split("│")[1:-1]), strict=True))


def test_a_stalled_camera_says_since_when_without_rate_or_eta(screens: list[str]) -> None:
    stalled = [r for s in screens for r in rows(s, STALLS) if "stalled since" in r]
    assert stalled, "the stall was never shown"
    for row in stalled:
        cell = cells(row)
        assert re.fullmatch(r"stalled since \d\d:\d\d:\d\d \(0:0[2-3]\)", cell["state"]), row
        assert (cell["file"], cell["recording"]) == ("1 of 2", FIRST), row
        assert cell["MB"] == "1.0 of 3.0" and (cell["rate"], cell["ETA"]) == ("-", "-"), row


def test_a_retry_counts_down_and_says_why(screens: list[str]) -> None:
    text = "\n".join(screens)
    waits = {int(n) for n in re.findall(r"retrying in (\d) s — timeout", text)}
    assert waits & {1, 2}, text[-3000:]  # the stalled camera's pause, counted down
    assert re.search(r"retrying in \d s — refused", text)  # the refusing camera's
    for row in (r for s in screens for r in rows(s, STALLS) + rows(s, FAILS)):
        if "retrying" in row or "failed" in row or "stalled" in row:
            assert "MB/s" not in row, row


def test_rate_and_eta_while_bytes_move_with_file_n_of_m(screens: list[str]) -> None:
    moving = [cells(r) for s in screens for r in rows(s, STALLS) if "MB/s" in r]
    assert moving
    for cell in moving:
        assert cell["state"] == "transferring", cell
        assert re.fullmatch(r"\d+\.\d MB/s", cell["rate"]) and re.fullmatch(r"\d+:\d\d",
                                                                          cell["ETA"]), cell
        assert re.fullmatch(r"\d\.\d of [13]\.0", cell["MB"]), cell
    text = "\n".join(screens)
    assert "1 of 2" in text and "2 of 2" in text and "1 of 1" in text


def test_the_end_says_done_or_failed_with_the_reason(screens: list[str]) -> None:
    last = screens[-1]
    (done,) = map(cells, rows(last, STALLS))
    assert done["state"] == "done" and (done["rate"], done["ETA"]) == ("-", "-"), done
    assert (done["file"], done["recording"]) == ("2 of 2", SECOND), done
    (failed,) = map(cells, rows(last, FAILS))
    assert failed["state"].startswith("failed —") and failed["rate"] == "-", failed
    tail = last[last.index(FAILS):]
    assert "refused" in tail and "could" in tail  # the reason, folded onto the next lines


def test_serials_and_names_are_never_cut(screens: list[str]) -> None:
    for screen in screens:
        table = screen[screen.find("dockd — docked cameras"):]
        assert "…" not in table, table
    text = "\n".join(screens)
    for whole in (STALLS, FAILS, FIRST, SECOND, BAD):
        assert whole in text, whole


def test_the_view_is_drawn_from_the_dock_not_from_callbacks() -> None:
    """Unit level: the same Progress reads as moving, then stalled, as time passes."""
    from collections import deque  # noqa: PLC0415
    from datetime import datetime  # noqa: PLC0415

    from dockd.console import describe, rate  # noqa: PLC0415
    from dockd.ingest import Progress  # noqa: PLC0415

    p = Progress(slot=1, serial="S", recording="R", done=2_000_000, total=4_000_000,
                 state="transferring", moved_at=100.0)
    samples = deque([(99.0, 0), (100.0, 2_000_000)])
    wall = datetime(2026, 11, 25, 14, 0, 10).astimezone()
    assert describe(p, rate(samples, 100.2), 100.2, wall)[1:] == ("2.0 MB/s", "0:01")
    state, shown, eta = describe(p, rate(samples, 105.0), 105.0, wall)
    assert state == "stalled since 14:00:05 (0:05)" and (shown, eta) == ("", "")
    p.state, p.reason = "incomplete", "R: refused: no"
    assert describe(p, None, 106.0, wall)[0] == "failed — R: refused: no"
    p.state, p.reason = "complete", ""
    assert describe(p, 5e6, 106.0, wall) == ("done", "", "")



@pytest.mark.parametrize("width", [80, 100, 150])
def test_at_any_width_serial_name_and_state_stay_whole(width: int) -> None:
    from rich.console import Console  # noqa: PLC0415

    from dockd.console import LiveConsole  # noqa: PLC0415
    from dockd.ingest import Progress  # noqa: PLC0415

    out = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    live = LiveConsole(out, clock=lambda: 100.0)
    serial = STALLS if width > 80 else "NC-100234"  # a long serial folds at 80 (not cut)
    live.on_progress(Progress(slot=1, serial=serial, recording=FIRST, done=1_000_000,
                              total=3_000_000, state="transferring", file_index=1,
                              file_count=2, moved_at=90.0, battery_percent=80))
    out.print(live.table())
    text = out.export_text()
    assert max(map(len, text.splitlines())) <= width
    assert serial in text and FIRST in text and "…" not in text
    # the state wraps in its column at 80, whole words, never cropped at the edge
    assert re.search(r"stalled since[\s│]*\d\d:\d\d:\d\d \(0:10\)", text), text
    assert ("battery" in text) == (width >= 150)  # the first to give way
