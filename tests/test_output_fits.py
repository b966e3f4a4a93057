"""Output that fits a terminal: what identifies a row (a serial, a recording's name, a status)
is never cut at 80, 100 or 120 columns; a pipe gets plain lines, one record each; `--json`
times are ISO 8601 everywhere.

The store is written by the real `dockd run --once --simulate` from a scenario with realistic
names (two of them share their first 16 characters, as clips started in the same second
do); the live status comes from a catalog with a transfer in flight and a recent error.
Tables are read through CliRunner with `COLUMNS` set, as a pipe without it, and through a
pseudo-terminal of a given size with no `COLUMNS` at all (what a person at a terminal sees).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from helpers_ingest import plain_config

from dockd.catalog import Catalog
from dockd.catalog.lease import LeaseOwner
from dockd.catalog.live import report_progress
from dockd.cli.common import KEY, WRAP, Column, print_records
from dockd.cli.dockctl_cmd import main as dockctl_main
from dockd.model import CameraIdentity, RecordingInfo

BIN = Path(sys.executable).parent
DOCKD, DOCKCTL = BIN / "dockd", BIN / "dockctl"
SERIALS = ("NC-1002417", "NC-1002418")
NAMES = {"NC-1002417": ["20261125_140211_0016.MP4", "20261125_140211_0017.MP4",
                        "20261125_151502_0018.MP4"],
         "NC-1002418": ["20261125_160000_0101.MP4"]}
STATUS = "deleted_from_camera"
WIDTHS = (80, 100, 120)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")


def scenario_text() -> str:
    out = ['[dock]\nname = "dock-a"\nslots = 2\n']
    for slot, serial in enumerate(SERIALS, 1):
        out.append(f'[[camera]]\nserial = "{serial}"\nslot = {slot}\nfirmware = "3.2.1"\n'
                   "dock_at_s = 0.0\n")
        for n, name in enumerate(NAMES[serial]):
            out.append(f'[[camera.recording]]\nname = "{name}"\nsize = {40_000 + n}\n'
                       f'seed = {slot * 10 + n}\nstarted = "2026-11-25T14:0{n}:11Z"\n'
                       "duration_s = 10\n")
    return "\n".join(out)


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = plain_config(root)
        self.scenario = root / "scenario.toml"
        self.scenario.write_text(scenario_text())

    def dockctl(self, *args: str, columns: int | None = None) -> Result:
        """dockctl in-process: a pipe, with COLUMNS when given (else none at all)."""
        cmd, *rest = args
        return CliRunner().invoke(dockctl_main, [cmd, "--config", str(self.config), *rest],
                                  prog_name="dockctl",
                                  env={"COLUMNS": str(columns) if columns else None})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    w = World(tmp_path_factory.mktemp("fits"))
    done = subprocess.run([str(DOCKD), "run", "--config", str(w.config), "--simulate",
                           str(w.scenario), "--sim-state", str(w.root / "sim-state"), "--once"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return w


def in_pty(args: list[str], columns: int, rows: int = 50) -> str:
    """Run a command on a pseudo-terminal `columns` wide and `rows` high (no COLUMNS, no LINES) and
    return what the terminal showed, without escape sequences."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", NO_COLOR="1")
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                            close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    os.close(master)
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def assert_fits(text: str, width: int, whole: list[str]) -> None:
    lines = text.splitlines()
    too_long = [ln for ln in lines if len(ln) > width]
    assert not too_long, f"wider than {width}:\n" + "\n".join(too_long)
    assert "…" not in text, text
    for value in whole:  # on one line, uncut
        assert any(value in ln for ln in lines), f"{value!r} is cut:\n{text}"


def every_name() -> list[str]:
    return [n for names in NAMES.values() for n in names]


# --- dockctl recordings -----------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_recordings_never_cut_a_serial_name_or_status(world, width):
    result = world.dockctl("recordings", columns=width)
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout, width, [*SERIALS, *every_name()])
    rows = [ln for ln in result.stdout.splitlines() if "20261125_" in ln]
    assert len(rows) == 4 and all(STATUS in ln for ln in rows), result.stdout


def test_at_80_columns_the_store_path_goes_and_the_table_says_so(world):
    result = world.dockctl("recordings", columns=80)
    assert str(world.root / "evidence") not in result.stdout
    assert "not shown at 80 columns: started, store path" in " ".join(result.stdout.split())
    wide = world.dockctl("recordings", columns=250)
    assert str(world.root / "evidence") in wide.stdout


def test_recordings_into_a_pipe_are_plain_lines_one_record_each(world):
    result = world.dockctl("recordings")  # not a terminal, no COLUMNS
    assert result.exit_code == 0, result.output
    header, *records = result.stdout.splitlines()
    assert header.split("\t") == ["id", "camera", "name", "size", "started", "status",
                                  "failure", "store path"]
    assert len(records) == 4
    fields = [ln.split("\t") for ln in records]
    assert all(len(f) == 8 for f in fields)
    assert sorted(f[2] for f in fields) == sorted(every_name())
    assert {f[5] for f in fields} == {STATUS}
    assert all(f[7].startswith(str(world.root / "evidence")) and f[7].endswith(".age")
               for f in fields)
    assert not re.search("[─━│┃┏┡└]", result.stdout)  # no table drawing


@pytest.mark.parametrize("width", [80, 100])
def test_recordings_at_a_real_terminal_never_cut_identifying_text(world, width):
    shown = in_pty([str(DOCKCTL), "recordings", "--config", str(world.config)], width)
    assert_fits(shown, width, [*SERIALS, *every_name()])
    assert shown.count(STATUS) == 4


# --- dockctl status ---------------------------------------------------------------------------

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
IN_FLIGHT = "20261125_140211_0016.MP4"
FAILED = "20261125_140211_0017.MP4"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog as `dockctl status` sees it mid-dock: one transfer running, one failed."""
    root = tmp_path_factory.mktemp("live")
    catalog = Catalog.open(f"sqlite:///{root / 'catalog.sqlite'}")
    catalog.upsert_camera(CameraIdentity(SERIALS[0], "BC-300 Pro", "3.2.1", "NetCo", T0))
    session = catalog.start_session(SERIALS[0], dock="dock-a", slot=3)
    owner = LeaseOwner.here(catalog.host, "test")
    attempts = {}
    for name in (IN_FLIGHT, FAILED):
        rec = catalog.recording_for(SERIALS[0], RecordingInfo(
            name, 200_000_000, T0, 600.0, 0.0, hashlib.sha256(name.encode()).digest()))
        catalog.take_lease(rec.id, owner)
        attempts[name] = catalog.begin_attempt(rec.id, owner=owner, session_id=session.id,
                                               offset_from=0).id
    report_progress(catalog, attempts[IN_FLIGHT], 50_000_000)
    catalog.finish_attempt(attempts[FAILED], bytes_transferred=1000, error_kind="timeout",
                           error_message="camera did not answer a bulk read within 5.0 s "
                                         "(slot 3, endpoint 0x81); it will be retried")
    catalog.close()
    config = root / "dockd.toml"
    config.write_text(f'[catalog]\nurl = "sqlite:///{root / "catalog.sqlite"}"\n')
    return config


def status(config: Path, *args: str, columns: int | None = None) -> Result:
    result = CliRunner().invoke(dockctl_main, ["status", "--config", str(config), *args],
                                env={"COLUMNS": str(columns) if columns else None})
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("width", WIDTHS)
def test_status_never_cuts_a_serial_a_recording_or_an_error_kind(live, width):
    out = status(live, columns=width).stdout
    assert_fits(out, width, [SERIALS[0], IN_FLIGHT, FAILED, "timeout"])
    # the message wraps, whole: every word of it is there
    words = " ".join(out.split())
    assert "(slot 3, endpoint 0x81)" in words or "endpoint 0x81" in words


def test_status_into_a_pipe_is_plain(live):
    out = status(live).stdout
    assert not re.search("[─━│┃┏┡└]", out)
    [flight] = [ln for ln in out.splitlines() if ln.startswith(SERIALS[0] + "\t" + IN_FLIGHT)]
    assert flight.split("\t")[2] == "25"  # 50 of 200 MB
    [error] = [ln for ln in out.splitlines() if "\ttimeout\t" in ln]
    assert error.endswith("it will be retried")


# --- dockd probe --------------------------------------------------------------------------------


def test_probe_at_80_columns_shows_the_whole_serial(world, tmp_path):
    args = [str(DOCKD), "probe", "--config", str(world.config), "--simulate",
            str(world.scenario), "--sim-state", str(tmp_path / "sim"), "--sim-reset"]
    shown = in_pty(args, 80)
    assert_fits(unabbreviated(shown), 80, [*SERIALS, *every_name()])
    assert "°C" in shown  # the battery is kept before model, driver and firmware
    piped = subprocess.run([*args[:-1]], capture_output=True, text=True, timeout=120,
                           check=False, env={**os.environ, "COLUMNS": "80"})
    assert piped.returncode == 0, piped.stderr
    assert_fits(unabbreviated(piped.stdout), 80, list(SERIALS))


def unabbreviated(text: str) -> str:
    """The recordings' lines abbreviate their hashes on purpose ("sha256 e938104790a4080d…")."""
    return re.sub(r"(sha256 [0-9a-f]{16})…", r"\1", text)


# --- health tables --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["cameras", "ports"])
@pytest.mark.parametrize("width", [80, 100])
def test_health_tables_never_cut_the_subject_or_its_status(world, command, width):
    result = world.dockctl(command, columns=width)
    assert result.exit_code == 0, result.output
    whole = list(SERIALS) if command == "cameras" else ["dock-a/1", "dock-a/2"]
    assert_fits(result.stdout, width, whole)
    rows = [ln for ln in result.stdout.splitlines() if any(w in ln for w in whole)]
    assert len(rows) == 2 and all(" ok " in ln for ln in rows), result.stdout


# --- JSON ---------------------------------------------------------------------------------------

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")
TIMEISH = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d")


def walk(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{where}[{i}]")
    else:
        yield where, value


def assert_json_times_are_iso(text: str) -> int:
    times = 0
    for where, value in walk(json.loads(text)):
        if isinstance(value, str) and TIMEISH.match(value):
            assert ISO.match(value), f"{where}: {value!r} is not ISO 8601 with a UTC offset"
            times += 1
        if isinstance(value, float) and value == 0:
            assert math.copysign(1, value) > 0, f"{where}: -0.0"
    return times


@pytest.mark.parametrize("command", ["recordings", "cameras", "ports", "health", "verify",
                                     "audit"])
def test_json_times_are_iso_8601(world, command):
    result = world.dockctl(command, "--json")
    assert result.exit_code == 0, result.output
    times = assert_json_times_are_iso(result.stdout)
    assert times or command in ("ports", "verify")


def test_status_json_times_are_iso_8601(live):
    data = json.loads(status(live, "--json").stdout)
    assert data["in_flight"][0]["started_at"].startswith("20")
    assert assert_json_times_are_iso(status(live, "--json").stdout) >= 3
    assert "T" in data["docked"][0]["docked_at"]


def test_probe_json_times_are_iso_8601(world, tmp_path):
    done = subprocess.run([str(DOCKD), "probe", "--json", "--config", str(world.config),
                           "--simulate", str(world.scenario), "--sim-state", str(tmp_path),
                           "--sim-reset"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert assert_json_times_are_iso(done.stdout) >= 4


def test_a_long_identifying_value_folds_rather_than_being_cut():
    """Narrower than even the identifying columns: the value is folded onto more lines, and
    every character of it is still there."""
    name = "20261125_140211_0016_a_very_long_vendor_export_name.MP4"

    @click.command()
    def show() -> None:
        print_records([Column("camera", KEY), Column("name", KEY)], [["NC-1002417", name]])

    result = CliRunner().invoke(show, env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    assert all(len(ln) <= 40 for ln in result.stdout.splitlines()), result.stdout
    assert "…" not in result.stdout
    # the name column's pieces, read top to bottom, are the whole name
    pieces = [cells[2].strip() for ln in result.stdout.splitlines()
              if len(cells := re.split("[│┃]", ln)) == 4]
    assert name in "".join(pieces), result.stdout


def test_plain_lines_never_split_a_record():
    @click.command()
    def show() -> None:
        print_records([Column("camera", KEY), Column("message", WRAP)],
                      [["NC-1", "line one\nline\ttwo"]])

    result = CliRunner().invoke(show, env={"COLUMNS": None})
    assert result.stdout.splitlines() == ["camera\tmessage", "NC-1\tline one line two"]
