"""Hostile cameras (scenarios/hostile/*.toml) against the real `dockd run --once` process.

Each scenario docks one or more malicious or broken cameras next to a healthy one. For
every scenario: the hostile camera gets a typed error in a log line that names its serial
and slot; what it holds stays on it; nothing is written outside the store; the daemon's
peak memory stays bounded (ru_maxrss from wait4, not a guess); it ends by itself; and every
other camera is ingested — stored once, decrypting with `age` to its exact source bytes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dockd_sim.scenario import load_scenario
from dockd_sim.spec import HostileSpec
from dockd_sim.state import SimRecording
from helpers_ingest import (
    Env,
    age_decrypt_sha256,
    assert_nothing_lost,
    camera_states,
    daemon_argv,
    make_env,
    parse_events,
    recording,
    scenario_toml,
    still_on_camera,
    stored_files,
)

from dockd.errors import ConfigError

HOSTILE_DIR = Path(__file__).resolve().parent.parent / "scenarios" / "hostile"
#: the daemon's peak resident set may not pass this (these runs peak near 100-110 MiB)
MAX_RSS_MIB = 256
#: a hostile camera may not make `dockd run --once` last longer than this
MAX_SECONDS = 45


@dataclass(frozen=True)
class Expect:
    #: (serial, slot) → text that its error line must contain
    errors: dict[tuple[str, int], str]
    #: the exit code of `dockd run --once` (6: something stayed on a camera)
    exit_code: int
    #: (serial, slot) → the raw names that stay on that camera (the entries refused on
    #: their own; their siblings are ingested); a camera with an error not named here
    #: keeps everything it holds
    keeps: dict[tuple[str, int], set[bytes]] | None = None


CASES: dict[str, Expect] = {
    "path-traversal": Expect({("NC-EVIL-TRAVERSE", 1): "path separator",
                              ("NC-EVIL-ABSOLUTE", 2): "path separator"}, 6,
                             {("NC-EVIL-TRAVERSE", 1): {b"../../../../../tmp/dockd-escape.MP4"},
                              ("NC-EVIL-ABSOLUTE", 2): {b"/etc/dockd-escape.MP4"}}),
    "bad-bytes": Expect({("NC-EVIL-NUL", 1): "contains NUL",
                         ("NC-EVIL-LATIN1", 2): "not UTF-8"}, 6,
                        {("NC-EVIL-NUL", 1): {b"a\x00.MP4"},
                         ("NC-EVIL-LATIN1", 2): {b"clip\xff\xfe.MP4"}}),
    "sanitise-collisions": Expect({}, 0),
    "duplicate-names": Expect({("NC-EVIL-DUPNAME", 1): "2 times"}, 6),
    "duplicate-serials": Expect({}, 0),
    # the camera's hash is part of a recording's identity: the clone's different bytes are
    # a recording of their own, stored beside the other (test_ingest_faults.py)
    "clone-identity": Expect({}, 0),
    "sizes": Expect({("NC-EVIL-HUGE", 2): "limit 1 TiB"}, 6),
    # accepted by the protocol, larger than the disk: waits on the camera as "store full"
    "size-beyond-disk": Expect({("NC-EVIL-TIB", 1): "store full"}, 6),
    "extra-bytes": Expect({("NC-EVIL-EXTRA", 1): "were announced"}, 6),
    # telemetry is reported, never a reason to keep footage: the soc is refused (typed),
    # the rest is recorded as sent (300 °C raises a critical health finding, checked below)
    "telemetry": Expect({("NC-EVIL-SOC", 1): "above 100%"}, 0),
    "clocks": Expect({}, 0),
    "endless-listing": Expect({("NC-EVIL-ENDLESS", 1): "page count"}, 6),
    "slower-and-slower": Expect({("NC-EVIL-SLOW", 1): "did not answer in time"}, 6),
}


@dataclass
class HostileRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    max_rss_mib: float
    seconds: float


#: forks the daemon from a small interpreter and reports the child's own peak RSS: a child
#: spawned straight from pytest (vfork + exec) inherits the pytest process's high-water RSS
#: as its ru_maxrss, which late in a suite run is above the bound measured here
_REAPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
while True:
    _, status, usage = os.wait4(pid, 0)
    if os.WIFEXITED(status) or os.WIFSIGNALED(status):
        break
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_measured(env: Env) -> HostileRun:
    """`dockd run --once` as a grandchild whose rusage a small reaper reads (peak RSS)."""
    out, err = env.root / "stdout.log", env.root / "stderr.log"
    fd, name = tempfile.mkstemp(suffix=".maxrss")  # outside the root the test audits
    os.close(fd)
    rss = Path(name)
    start = time.monotonic()
    argv = daemon_argv(env, reset=True)
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([sys.executable, "-c", _REAPER, str(rss), *argv], stdout=o,
                                stderr=e, cwd=env.root, start_new_session=True)
    try:
        proc.wait(timeout=MAX_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"dockd ran longer than {MAX_SECONDS} s against a hostile camera")
    # ru_maxrss is KiB on Linux
    peak_kib = int(rss.read_text())
    rss.unlink()
    return HostileRun(proc.returncode, parse_events(out.read_text()), err.read_text(),
                      peak_kib / 1024, time.monotonic() - start)


def files_outside_store(env: Env, before: set[Path]) -> list[Path]:
    """Files under the test root that the run created anywhere but the store, the catalog
    and the simulator's own state."""
    allowed_dirs = (env.store, env.sim_state)
    allowed = {env.catalog_path, Path(f"{env.catalog_path}-wal"),
               Path(f"{env.catalog_path}-shm"), env.root / "stdout.log",
               env.root / "stderr.log"}
    new = []
    for path in env.root.rglob("*"):
        if path in before or path in allowed or path.is_dir():
            continue
        if any(path.is_relative_to(d) for d in allowed_dirs):
            continue
        new.append(path)
    return new


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_camera(name: str, tmp_path: Path) -> None:
    expect = CASES[name]
    env = make_env(tmp_path, scenario_text=(HOSTILE_DIR / f"{name}.toml").read_text())
    before = set(tmp_path.rglob("*"))

    run = run_measured(env)

    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == expect.exit_code, (run.returncode, run.stderr)
    assert run.max_rss_mib < MAX_RSS_MIB, f"peak RSS {run.max_rss_mib:.0f} MiB"
    assert files_outside_store(env, before) == []
    store = env.store.resolve()
    for path in stored_files(env):
        assert path.resolve().is_relative_to(store), path
    for escape in (Path("/tmp/dockd-escape.MP4"), Path("/etc/dockd-escape.MP4")):
        assert not escape.exists(), escape

    # the hostile cameras: a typed error on a line naming serial and slot; nothing taken
    states = camera_states(env)
    for (serial, slot), text in expect.errors.items():
        lines = [e for e in run.events if (e.get("serial"), e.get("slot")) == (serial, slot)
                 and text in str(e.get("error", "")) + str(e.get("battery_error", ""))]
        assert lines, f"no log line for {serial} in slot {slot} mentioning {text!r}"
        kinds = {e.get("error_kind") or e.get("outcome")
                 or str(e.get("battery_error") or "").partition(":")[0] or None
                 for e in lines} - {None}
        # a typed error, said as its kind (a listing entry refused on its own: "refused");
        # a size beyond the disk is dockd's own refusal (store_full), on a line without one
        assert kinds <= {"protocol", "timeout", "refused"}, kinds
        assert kinds or name == "size-beyond-disk", (name, lines)
    keeps = expect.keeps or {}
    for state in states:
        key = (state.spec.serial, state.spec.slot)
        if key in expect.errors and name != "telemetry":
            kept = {r.name for r in state.recordings()}
            assert kept == keeps.get(key, {r.name for r in state.spec.recordings}), key

    # everything else: gone from the camera only as a verified copy of its exact bytes
    with env.catalog() as catalog:
        rows = catalog.recordings()
    taken = 0
    for state in states:
        present = {id(r.spec) for r in state.recordings()}
        for rec in (SimRecording(r, env.sim_state) for r in state.spec.recordings):
            if id(rec.spec) in present:
                assert (state.spec.serial, state.spec.slot) in expect.errors, (
                    state.spec.serial, rec.name)
                continue
            key = (state.spec.serial, rec.name.decode())
            want = rec.content.sha256().hex()  # the true bytes, not what the camera claims
            row = next(r for r in rows if (r.camera_serial, r.camera_name) == key
                       and r.camera_sha256 == want)
            assert row.status in ("verified", "deleted_from_camera"), (key, row.status)
            assert row.store_path is not None
            assert age_decrypt_sha256(env, Path(row.store_path)) == row.camera_sha256, key
            taken += 1
    healthy = [s for s in states if (s.spec.serial, s.spec.slot) not in expect.errors]
    assert taken >= sum(len(s.spec.recordings) for s in healthy) > 0
    assert len(stored_files(env)) == taken  # each stored exactly once


def test_every_hostile_scenario_has_a_case() -> None:
    shipped = {p.stem for p in HOSTILE_DIR.glob("*.toml")}
    assert shipped == set(CASES)


def test_out_of_range_telemetry_is_reported_not_trusted(tmp_path: Path) -> None:
    env = make_env(tmp_path, scenario_text=(HOSTILE_DIR / "telemetry.toml").read_text())
    run = run_measured(env)
    docked = {e["serial"]: e for e in run.events if e.get("event") == "camera_docked"}
    assert "battery_percent" not in docked["NC-EVIL-SOC"]  # refused, not clamped to 100
    assert docked["NC-EVIL-HOT"]["battery_temp_c"] == 300.0
    hot = [e for e in run.events if e.get("event") == "health_finding_raised"
           and e.get("subject") == "NC-EVIL-HOT"]
    assert [e["finding"] for e in hot] == ["battery_hot"]
    assert hot[0]["severity"] == "critical"


def test_clocks_far_off_are_measured_and_set(tmp_path: Path) -> None:
    env = make_env(tmp_path, scenario_text=(HOSTILE_DIR / "clocks.toml").read_text())
    run = run_measured(env)
    assert run.returncode == 0, run.stderr
    docked = {e["serial"]: e["camera_clock"] for e in run.events
              if e.get("event") == "camera_docked"}
    assert docked["NC-EVIL-1970"].startswith("1970-")
    assert docked["NC-EVIL-2100"].startswith("2100-")
    health = {e["serial"]: e for e in run.events if e.get("event") == "health_capture"}
    assert health["NC-EVIL-1970"]["clock_set"] and health["NC-EVIL-2100"]["clock_set"]
    assert health["NC-EVIL-1970"]["clock_offset_s"] < -1e9 < 1e9 < health["NC-EVIL-2100"][
        "clock_offset_s"]
    # the stored paths follow the recording's own start, whatever the year
    paths = {p.relative_to(env.store).parts[:2] for p in stored_files(env)}
    assert ("NC-EVIL-1970", "1970") in paths and ("NC-EVIL-2100", "2100") in paths



def test_hostile_keys_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    camera = '[[camera]]\nserial = "A"\nslot = 1\n[camera.hostile]\n'
    path.write_text(camera + "claimed_size = 7\nextra_bytes = 3\nendless_listing = true\n"
                    "slower_and_slower = true\nsoc_percent = 5000\nvoltage_mv = -3700\n"
                    "temperature_c = 300\n")
    assert load_scenario(path).cameras[0].hostile == HostileSpec(
        claimed_size=7, extra_bytes=3, endless_listing=True, slower_and_slower=True,
        soc_percent=5000.0, voltage_mv=-3700, temperature_c=300.0)
    for bad, where in [("extra_bytes = 1048577", "camera[0].hostile.extra_bytes"),
                       ('endless_listing = "yes"', "camera[0].hostile.endless_listing"),
                       ("claimed_size = -1", "camera[0].hostile.claimed_size"),
                       ("soc_percent = nan", "camera[0].hostile.soc_percent"),
                       ("lie = true", "camera[0].hostile.lie")]:
        path.write_text(camera + bad + "\n")
        with pytest.raises(ConfigError, match=re.escape(where)):
            load_scenario(path)


def test_twin_serials_docked_at_once(tmp_path: Path) -> None:
    """Two cameras claiming one serial, in sessions at once: each session books deletions the
    other did (its listing lacks them); booking a deletion twice is a no-op, not an error.
    A few runs of 20 recordings each hit that window most of the time."""
    for attempt in range(4):
        cams = [{"serial": "NC-TWIN", "slot": slot, "recording": [
            recording(f"{slot}-{k}.MP4", 1000, 10 * slot + k, k) for k in range(20)]}
            for slot in (1, 2)]
        root = tmp_path / str(attempt)
        root.mkdir()
        env = make_env(root, scenario_text=scenario_toml(cams))
        run = run_measured(env)
        assert run.returncode == 0, run.stderr
        assert still_on_camera(env) == {"NC-TWIN": set()}
        assert_nothing_lost(env, decrypt=False)
