"""The torture campaign: random but seeded fleet scenarios against the real `dockd run`
process, with process-level faults injected at random moments, and the promise checked
after every life of the daemon and after a final clean run.

Used by `scripts/torture` (a campaign of any length) and tests/test_torture.py (a bounded
one in CI). Every run is a pure function of its seed: `run_one(seed, ...)` replays it.
docs/testing.md lists every invariant and every fault.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers_ingest import (
    DOCKD,
    Env,
    age_decrypt_sha256,
    leftovers,
    make_env,
    scenario_toml,
    source_sha256,
    start_daemon,
    still_on_camera,
    stored_files,
    tolerant_events,
)

from dockd.catalog.rows import RecordingRow
from dockd.store import final_name_of, sidecar_path

DOCKCTL = DOCKD.with_name("dockctl")
KIB, MIB = 1 << 10, 1 << 20
#: a life of the daemon that has not ended by then is a hang (a violation)
LIFE_TIMEOUT_S = 90.0
#: after SIGTERM the daemon checkpoints and stops; longer than this is a hang
TERM_TIMEOUT_S = 30.0
SIM_FAULTS = ("unplug", "stall", "corrupt", "bad_frame", "hash_mismatch", "read_error", "slow")
PROCESS_FAULTS = ("sigkill", "sigterm", "sighup_valid", "sighup_broken", "disk_full",
                  "catalog_lock")
#: room for the largest run's store several times over: only the ballast fills it
STORE_FS_MIB = 160

Say = Callable[[str], None]


@dataclass
class RunResult:
    seed: int
    violations: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)  # what happened that is no fault
    lives: int = 0
    recordings: int = 0
    stored: int = 0
    left_on_camera: int = 0

    @property
    def kills(self) -> int:
        return self.faults["sigkill"]


@dataclass
class Options:
    """What a campaign may do; `max_mib` bounds a recording's size."""

    max_mib: float = 3.0
    max_cameras: int = 4
    max_lives: int = 5
    mount: bool = True  # the disk_full fault needs a size-limited tmpfs
    keep: bool = False  # keep each run's directory (logs, store, catalog) for a post-mortem

    def replay(self, seed: int) -> str:
        """The command that replays run `seed` (the options shape the scenario too)."""
        default = Options()
        args = [f"--seed {seed}", "--runs 1"]
        args += [f"--max-mib {self.max_mib:g}"] * (self.max_mib != default.max_mib)
        args += [f"--max-cameras {self.max_cameras}"] * (self.max_cameras != default.max_cameras)
        args += [f"--max-lives {self.max_lives}"] * (self.max_lives != default.max_lives)
        args += ["--no-mount"] * (not self.mount)
        return "scripts/torture " + " ".join(args)


# --- the scenario ----------------------------------------------------------------------


def _recordings(rng: random.Random, cam: int, max_bytes: int) -> list[dict[str, Any]]:
    out = []
    for r in range(rng.randint(0, 4)):
        size = rng.choice([0, rng.randint(1, 4 * KIB), rng.randint(4 * KIB, 256 * KIB),
                           rng.randint(256 * KIB, max(256 * KIB + 1, max_bytes))])
        out.append({"name": f"T{cam}_{r:02d}.MP4", "size": size, "seed": rng.randrange(1 << 30),
                    "started": f"2026-11-25T{8 + cam:02d}:{r:02d}:00Z"})
    return out


def _camera_faults(rng: random.Random, recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    readable = [r for r in recs if r["size"] > 0]
    faults: list[dict[str, Any]] = []
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3]) if readable else 0):
        rec = rng.choice(readable)
        kind = rng.choice(SIM_FAULTS)
        fault: dict[str, Any] = {"kind": kind, "recording": rec["name"],
                                 "at_byte": rng.randrange(rec["size"]),
                                 "times": rng.randint(1, 2)}
        # a fault that never stops keeps its recording on the camera, with a reason
        if kind in ("hash_mismatch", "read_error", "corrupt") and rng.random() < 0.15:
            fault["times"] = "always"
        if kind == "slow":
            fault["delay_s"] = round(rng.uniform(0.005, 0.05), 3)
        faults.append(fault)
    return faults


def make_scenario(rng: random.Random, opts: Options) -> tuple[list[dict[str, Any]],
                                                              list[dict[str, Any]]]:
    """Cameras (helpers_ingest.scenario_toml form) and the dock's port faults."""
    slots = rng.sample(range(1, 9), rng.randint(1, opts.max_cameras))
    cameras = []
    for i, slot in enumerate(slots, start=1):
        recs = _recordings(rng, i, int(opts.max_mib * MIB))
        cam: dict[str, Any] = {"serial": f"NC-T{i}-{rng.randrange(10000):04d}", "slot": slot,
                               "link_mb_s": rng.choice([0, 2, 5, 10, 20]),
                               "dock_at_s": rng.choice([0.0, 0.0, round(rng.uniform(0, 2), 2)]),
                               "recording": recs, "fault": _camera_faults(rng, recs)}
        if rng.random() < 0.7:
            cam["redock_after_s"] = round(rng.uniform(0.1, 1.0), 2)
        if rng.random() < 0.2:
            cam["undock_at_s"] = round(cam["dock_at_s"] + rng.uniform(0.3, 3.0), 2)
        cameras.append(cam)
    if not any(c["recording"] for c in cameras):  # a run with nothing to lose proves little
        cameras[0]["recording"] = [{"name": "T1_00.MP4", "size": rng.randint(1, 2 * MIB),
                                    "seed": rng.randrange(1 << 30),
                                    "started": "2026-11-25T09:00:00Z"}]
    ports = [{"slot": rng.choice(slots), "kind": rng.choice(["read_error", "corrupt"]),
              "rate": round(rng.uniform(0.02, 0.3), 3), "seed": rng.randrange(1000)}
             for _ in range(rng.choice([0, 0, 1, 2]))]
    return cameras, ports


def render_scenario(cameras: list[dict[str, Any]], ports: list[dict[str, Any]]) -> str:
    text = scenario_toml(cameras, dock="dock-torture")
    for port in ports:
        text += "\n[[dock.port_fault]]\n" + "".join(
            f"{k} = {json.dumps(v)}\n" for k, v in port.items())
    return text


def final_scenario(cameras: list[dict[str, Any]]) -> str:
    """The same cameras and flash, a calm dock: no port faults, nobody pulled out, every
    camera that leaves comes back. Only the timeline changes, so the flash is kept."""
    calm = []
    for cam in cameras:
        kept = {k: v for k, v in cam.items() if k != "undock_at_s"}
        calm.append({**kept, "dock_at_s": 0.0, "redock_after_s": 0.1, "link_mb_s": 0})
    return render_scenario(calm, [])


# --- faults from outside the process ---------------------------------------------------


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def _valid_config(good: str, rng: random.Random) -> str:
    text = good.replace("max_retries = 3", f"max_retries = {rng.randint(2, 4)}")
    return text.replace("transfer_timeout_s = 0.5",
                        f"transfer_timeout_s = {rng.choice([0.5, 0.75, 1.0])}")


def _broken_config(good: str, rng: random.Random) -> str:
    return rng.choice([
        good + "\n[[[ not toml\n",
        good.replace("max_retries = 3", "max_retries = -4"),
        good.replace("[encryption]", "[encryption]\nsurprise = 1"),
        good[: len(good) // 2],
        "",
    ])


def _sighup_handled() -> bool:
    """SIGHUP's default action ends a process; without a handler it is just another kill."""
    daemon = Path(__file__).resolve().parents[1] / "dockd" / "daemon.py"
    return "SIGHUP" in daemon.read_text()


class StoreFs:
    """A size-limited tmpfs under the store, filled by a ballast file and freed again."""

    def __init__(self, mnt: Path) -> None:
        self.mnt = mnt
        self.ballast = mnt / "ballast"

    @classmethod
    def mount(cls, mnt: Path, say: Say) -> StoreFs | None:
        mnt.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={STORE_FS_MIB}m,mode=0700",
                               "tmpfs", str(mnt)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            say(f"disk_full fault skipped: cannot mount a tmpfs: "
                f"{proc.stderr.strip() or proc.returncode}")
            return None
        return cls(mnt)

    def fill(self, leave: int) -> None:
        stat = os.statvfs(self.mnt)
        todo = max(0, stat.f_bavail * stat.f_frsize - leave)
        block = b"\0" * MIB
        with contextlib.suppress(OSError), self.ballast.open("ab", buffering=0) as f:
            while todo > 0:
                todo -= f.write(block[:todo])

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def umount(self) -> None:
        subprocess.run(["umount", "-l", str(self.mnt)], check=False, capture_output=True)


LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=20, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def lock_catalog(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding `BEGIN EXCLUSIVE` on the catalog for `seconds`."""
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # "locked" (or EOF if it could not lock: the daemon held it)
    return proc


# --- reading what happened ---------------------------------------------------------------


def _rows(env: Env) -> list[RecordingRow]:
    if not env.catalog_path.exists():
        return []
    with env.catalog() as catalog:
        return list(catalog.recordings())


def check_nothing_lost(env: Env, sources: dict[tuple[str, str], str],
                       *, decrypt: bool) -> list[str]:
    """Every recording is on its camera, or catalogued verified with its file present and
    the source's hash (and, with `decrypt`, decrypting with `age` to the source bytes)."""
    problems = []
    on_camera = still_on_camera(env)
    rows: dict[tuple[str, str], list[RecordingRow]] = {}
    for row in _rows(env):
        rows.setdefault((row.camera_serial, row.camera_name), []).append(row)
    for key, sha in sources.items():
        held = rows.get(key, [])
        if len(held) > 1:
            problems.append(f"{key}: catalogued {len(held)} times")
        if key[1] in on_camera.get(key[0], set()):
            continue
        good = [r for r in held if r.status in ("verified", "deleted_from_camera")]
        if not good:
            problems.append(f"{key}: gone from the camera without a verified copy "
                            f"(catalog: {[r.status.value for r in held]})")
            continue
        row = good[0]
        path = Path(row.store_path or "")
        if not row.store_path or not path.is_file():
            problems.append(f"{key}: gone from the camera, stored file {path} missing")
        elif row.camera_sha256 != sha:
            problems.append(f"{key}: catalogued SHA-256 is not the source's")
        elif decrypt and _decrypt_sha256(env, path) != sha:
            problems.append(f"{key}: {path} does not decrypt to the source bytes")
    return problems


def _decrypt_sha256(env: Env, path: Path) -> str | None:
    """`age -d` with the test identity; None when age refuses the file."""
    try:
        return age_decrypt_sha256(env, path)
    except subprocess.CalledProcessError:
        return None


def unexplained_leftovers(env: Env, on_camera: dict[str, set[str]]) -> list[Path]:
    """Temporary files in the store, except what is kept on purpose: a partial with its
    resume state, for a recording still on its camera (the next dock resumes from it)."""
    found = set(leftovers(env))
    kept: set[Path] = set()
    for path in found:
        final = final_name_of(path)
        if final is not None and sidecar_path(path) in found:
            serial = path.relative_to(env.store).parts[0]
            stem = final.removesuffix(".age")
            if re.sub(r"~r\d+$", "", stem) in on_camera.get(serial, set()):
                kept |= {path, sidecar_path(path)}
    return sorted(found - kept)


def check_final(env: Env, sources: dict[tuple[str, str], str], final_rc: int,
                final_events: list[dict[str, Any]]) -> list[str]:
    """The invariants after the final clean run (docs/testing.md numbers them)."""
    problems = check_nothing_lost(env, sources, decrypt=True)
    on_camera = still_on_camera(env)
    rows = _rows(env)
    # stored exactly once: one file per stored row, no file without its row
    paths = [r.store_path for r in rows if r.store_path]
    if len(paths) != len(set(paths)):
        problems.append("two catalog rows share one stored file")
    files = sorted(str(p) for p in stored_files(env))
    if sorted(paths) != files:
        problems.append(f"store and catalog disagree: files without rows "
                        f"{sorted(set(files) - set(paths))}, rows without files "
                        f"{sorted(set(paths) - set(files))}")
    if extra := [(r.camera_serial, r.camera_name) for r in rows
                 if (r.camera_serial, r.camera_name) not in sources]:
        problems.append(f"catalog rows for recordings no camera held: {extra}")
    # the catalog agrees with the cameras
    for r in rows:
        there = r.camera_name in on_camera.get(r.camera_serial, set())
        status = r.status.value
        if status == "transferring":  # the final run was not killed: no attempt left open
            problems.append(f"{r.camera_serial}/{r.camera_name}: left in status {status}")
        if status == "deleted_from_camera" and there:
            problems.append(f"{r.camera_serial}/{r.camera_name}: catalog says deleted, "
                            "camera still holds it")
        if status != "deleted_from_camera" and not there:
            problems.append(f"{r.camera_serial}/{r.camera_name}: off the camera but the "
                            f"catalog says {status}")
    # every recording still on a camera has a reason the final run gave
    sessions = [e for e in final_events if e.get("event") == "dock_session"]
    reasons = {(e.get("serial"), f.split(": ", 1)[0]) for e in sessions
               for f in e.get("failures", [])}
    failed_rows = {(r.camera_serial, r.camera_name) for r in rows
                   if r.status.value == "failed" and r.failure_reason}
    for serial, names in on_camera.items():
        for name in names:
            if (serial, name) not in reasons and (serial, name) not in failed_rows:
                problems.append(f"{serial}/{name}: still on the camera without a reason")
    # the daemon's verdict agrees: exit 0 only when every camera is empty
    left = sum(len(n) for n in on_camera.values())
    if (final_rc == 0) != (left == 0):
        problems.append(f"final run exited {final_rc} with {left} recordings on cameras")
    if final_rc not in (0, 6):
        problems.append(f"final run exited {final_rc}")
    if stray := unexplained_leftovers(env, on_camera):
        problems.append(f"temporary files after the final clean run: {stray}")
    with env.catalog() as catalog:
        problems += [f"audit chain: {p.message}" for p in catalog.verify_chain()]
    proc = subprocess.run([str(DOCKCTL), "verify", "--config", str(env.config), "--identity",
                           str(env.key_file), "--json"], capture_output=True, text=True,
                          timeout=300, check=False)
    if proc.returncode != 0:
        problems.append(f"dockctl verify exited {proc.returncode}: "
                        f"{proc.stdout.strip()[-800:]} {proc.stderr.strip()[-400:]}")
    return problems


# --- one run -------------------------------------------------------------------------------


class Life:
    """One start of `dockd run --once`, and what happens to it."""

    def __init__(self, env: Env, log_path: Path, *, reset: bool) -> None:
        self.log_path = log_path
        self.proc = start_daemon(env, log_path, reset=reset)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def sleep(self, seconds: float) -> bool:
        """Sleep while it runs; False as soon as it has ended."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            time.sleep(0.005)
        return self.alive()

    def wait_event(self, event: str, after: int, timeout_s: float) -> bool:
        """`event` logged (after the `after`-th byte of the log) within the timeout."""
        needle = f'"event": "{event}"'.encode()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if needle in self.log_path.read_bytes()[after:]:
                return True
            if not self.alive():
                return needle in self.log_path.read_bytes()[after:]
            time.sleep(0.01)
        return False

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, signum)

    def end(self, timeout_s: float) -> int | None:
        """Its exit code; None (and SIGKILLed) when it did not end in time: a hang."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            return None


def _inject(life: Life, kind: str, env: Env, rng: random.Random, fs: StoreFs | None,
            good_config: str, result: RunResult, lockers: list[subprocess.Popen[str]]) -> str:
    """One process-level fault; returns a violation message or ''."""
    result.faults[kind] += 1
    if kind == "sigkill":
        life.signal(signal.SIGKILL)
    elif kind == "sigterm":
        life.signal(signal.SIGTERM)
        if life.end(TERM_TIMEOUT_S) is None:
            return f"did not stop within {TERM_TIMEOUT_S} s of SIGTERM"
    elif kind in ("sighup_valid", "sighup_broken"):
        broken = kind == "sighup_broken"
        text = _broken_config(good_config, rng) if broken else _valid_config(good_config, rng)
        mark = life.log_path.stat().st_size  # before the write: dockd may also watch the file
        _write_atomic(env.config, text)
        life.signal(signal.SIGHUP)
        want = "config_reload_refused" if broken else "config_reloaded"
        if not life.wait_event(want, mark, 10.0) and life.alive():
            return f"SIGHUP ({'broken' if broken else 'valid'} config): no {want} within 10 s"
    elif kind == "disk_full" and fs is not None:
        fs.fill(leave=rng.choice([0, 16 * KIB, 300 * KIB]))
        life.sleep(rng.uniform(0.2, 2.0))
        fs.free()
    elif kind == "catalog_lock":
        lockers.append(lock_catalog(env.catalog_path, rng.uniform(0.5, 4.0)))
    return ""


@dataclass(frozen=True)
class Step:
    """One planned process-level fault: `delay_s` after the previous one (or after
    `dockd_started`), of `kind`, its own details drawn from `seed`."""

    delay_s: float
    kind: str
    seed: int


def plan_life(rng: random.Random, kinds: list[str]) -> list[Step]:
    """Drawn before the run starts, so a replay plans the same faults whatever the
    daemon's timing does (a step meets a process that already ended: it is skipped)."""
    return [Step(round(rng.uniform(0.0, 1.5), 3), rng.choice(kinds), rng.randrange(1 << 30))
            for _ in range(rng.choice([0, 1, 2, 2, 3, 4]))]


def _one_life(env: Env, log_path: Path, steps: list[Step], *, first: bool,
              fs: StoreFs | None, good_config: str, result: RunResult) -> list[str]:
    problems: list[str] = []
    lockers: list[subprocess.Popen[str]] = []
    life = Life(env, log_path, reset=first)
    if not life.wait_event("dockd_started", 0, 60.0):
        if life.alive():
            problems.append("no dockd_started within 60 s")
    else:
        for step in steps:
            if not life.sleep(step.delay_s):
                break
            kind = step.kind
            if msg := _inject(life, kind, env, random.Random(step.seed), fs, good_config,
                              result, lockers):
                problems.append(f"{kind}: {msg}")
            _write_atomic(env.config, good_config)  # the next life starts on a good one
            if kind in ("sigkill", "sigterm"):
                break
    rc = life.end(LIFE_TIMEOUT_S)
    for locker in lockers:
        locker.wait(timeout=30)
    text = log_path.read_text(errors="replace")
    if rc is None:
        problems.append(f"hung: still running after {LIFE_TIMEOUT_S} s")
    elif rc in (-signal.SIGHUP, -signal.SIGTERM) and '"event": "dockd_stopped"' in text:
        # the signal met the interpreter's shutdown (handlers are reset to the default
        # there) after all work was done and logged: nothing was in flight
        result.notes["signal_during_exit"] += 1
    elif rc not in (0, 6, -signal.SIGKILL):
        problems.append(f"exited {rc}: " + _tail(log_path))
    if "Traceback" in text:
        problems.append("a traceback in the log: " + _tail(log_path))
    return problems


NOTED = ("stored_file_adopted", "partial_removed", "config_reloaded", "config_reload_refused",
         "previous_run_did_not_stop_cleanly", "camera_delete_confirmed")


def _note_events(log_path: Path, result: RunResult) -> None:
    """What the daemon did under the faults, for the campaign's summary."""
    for event in tolerant_events(log_path):
        name = event.get("event")
        if name in NOTED:
            result.notes[str(name)] += 1
        elif name == "transfer":
            result.notes[f"transfer_{event.get('outcome')}"] += 1
            if event.get("outcome") == "stored" and event.get("resumed_from", 0):
                result.notes["transfer_resumed"] += 1


def _tail(path: Path, lines: int = 6) -> str:
    return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_one(seed: int, workdir: Path, opts: Options, say: Say = print) -> RunResult:
    """One seeded run: a scenario, up to `max_lives` daemon lives under faults, a final
    clean run, and every invariant checked."""
    rng = random.Random(seed)
    result = RunResult(seed)
    root = Path(tempfile.mkdtemp(prefix=f"torture-{seed}-", dir=workdir))
    fs = StoreFs.mount(root / "fs", say) if opts.mount and rng.random() < 0.5 else None
    try:
        cameras, ports = make_scenario(rng, opts)
        store = fs.mnt / "evidence" if fs else root / "evidence"
        env = make_env(root, store=store, scenario_text=render_scenario(cameras, ports))
        good_config = env.config.read_text()
        sources = source_sha256(env)
        result.recordings = len(sources)
        result.faults["camera_fault"] += sum(len(c["fault"]) for c in cameras)
        result.faults["port_fault"] += len(ports)
        result.faults["undock"] += sum("undock_at_s" in c for c in cameras)
        kinds = [k for k in PROCESS_FAULTS if (k != "disk_full" or fs is not None)
                 and (not k.startswith("sighup") or _sighup_handled())]
        plan = [plan_life(rng, kinds) for _ in range(rng.randint(1, opts.max_lives))]
        for n, steps in enumerate(plan, start=1):
            result.lives += 1
            log_path = root / f"life{n:02d}.log"
            problems = _one_life(env, log_path, steps, first=(n == 1), fs=fs,
                                 good_config=good_config, result=result)
            _note_events(log_path, result)
            problems += check_nothing_lost(env, sources, decrypt=False)
            result.violations += [f"life {n}: {p}" for p in problems]
        # the final clean run: calm dock, room in the store, nobody interfering
        env.scenario.write_text(final_scenario(cameras))
        for attempt in (1, 2):
            log_path = root / f"final{attempt}.log"
            final = Life(env, log_path, reset=False)
            rc = final.end(LIFE_TIMEOUT_S)
            if rc is None:
                result.violations.append("final clean run hung")
                break
            if rc == 0:
                break
        events = tolerant_events(log_path)
        _note_events(log_path, result)
        if "Traceback" in log_path.read_text(errors="replace"):
            result.violations.append("final run: a traceback: " + _tail(log_path))
        result.violations += check_final(env, sources, rc if rc is not None else -1, events)
        on_camera = still_on_camera(env)
        result.left_on_camera = sum(len(v) for v in on_camera.values())
        result.stored = len(sources) - result.left_on_camera
    finally:
        if fs is not None:
            if result.violations or opts.keep:  # the store goes with the mount: copy it
                subprocess.run(["cp", "-a", str(fs.mnt), str(root / "fs-copy")], check=False)
            fs.umount()
        if not opts.keep and not result.violations:
            subprocess.run(["rm", "-rf", str(root)], check=False)
    if result.violations:
        say(f"kept for inspection: {root}")
    return result


# --- a campaign ----------------------------------------------------------------------------


@dataclass
class Campaign:
    runs: int = 0
    lives: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    violations: int = 0
    failing: list[int] = field(default_factory=list)

    def last_line(self) -> str:
        return (f"runs={self.runs} faults={sum(self.faults.values())} "
                f"kills={self.faults['sigkill']} violations={self.violations}")


def run_seed(base: int, index: int) -> int:
    """Run `index` of a campaign started with `base`: a seed of its own, so one run replays
    alone (`--seed` that seed, `--runs 1`)."""
    return base if index == 0 else random.Random(base * 1_000_003 + index).randrange(1 << 31)


def campaign(seed: int, runs: int | None, minutes: float | None, workdir: Path,
             opts: Options, say: Say = print) -> Campaign:
    """Runs until `runs` are done or `minutes` have passed (whichever is given first)."""
    total = Campaign()
    deadline = time.monotonic() + minutes * 60 if minutes else None
    index = 0
    while (runs is None or index < runs) and (deadline is None or time.monotonic() < deadline):
        run = run_seed(seed, index)
        index += 1
        t0 = time.monotonic()
        result = run_one(run, workdir, opts, say)
        total.runs += 1
        total.lives += result.lives
        total.faults += result.faults
        total.notes += result.notes
        total.violations += len(result.violations)
        say(f"run {index} seed={run}: {result.recordings} recordings, {result.lives} lives, "
            f"{sum(result.faults.values())} faults ({_faults(result.faults)}), "
            f"{result.left_on_camera} left on camera, {len(result.violations)} violations, "
            f"{time.monotonic() - t0:.1f} s")
        if result.violations:
            total.failing.append(run)
            for v in result.violations:
                say(f"  VIOLATION seed={run}: {v}")
            say(f"  replay: {opts.replay(run)}")
    say(f"faults by kind: {_faults(total.faults)}; daemon lives: {total.lives}; "
        f"notes: {_faults(total.notes) or 'none'}")
    if total.failing:
        say("failing seeds: " + " ".join(map(str, total.failing)))
    return total


def _faults(faults: Counter[str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(faults.items()) if v)
