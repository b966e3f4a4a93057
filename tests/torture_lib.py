"""The torture campaign: random but seeded fleet scenarios against the real `dockd run`
process, with process-level faults injected at random moments, the catalog and the store
tampered with between lives, and the promise checked after every life of the daemon and after
a final clean run.

Used by `scripts/torture` (a campaign of any length) and tests/test_torture.py (a bounded
one in CI). Every run is a pure function of its seed: `run_one(seed, ...)` replays it.
docs/testing.md lists every invariant and every fault.

Cameras are told apart by (serial, slot): a clone docks with another camera's serial. A
recording is keyed per camera as (serial, slot, name) (`RecKey`); the catalog knows it as
(serial, name, source SHA-256) (`Ident`), which is the same for a clone's identical copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dockd_sim.scenario import load_scenario
from dockd_sim.state import SimRecording
from helpers_ingest import (
    DOCKD,
    Env,
    age_decrypt_sha256,
    camera_states,
    leftovers,
    make_env,
    scenario_toml,
    start_daemon,
    stored_files,
    tolerant_events,
)

from dockd.catalog.rows import RecordingRow
from dockd.store import QUARANTINE_DIR, final_name_of, sidecar_path

DOCKCTL = DOCKD.with_name("dockctl")
KIB, MIB = 1 << 10, 1 << 20
#: a life of the daemon that has not ended by then is a hang (a violation)
LIFE_TIMEOUT_S = 90.0
#: after SIGTERM the daemon checkpoints and stops; longer than this is a hang
TERM_TIMEOUT_S = 30.0
#: after a storm of SIGTERMs (plus what is left of a catalog lock it must wait out)
STORM_TIMEOUT_S = 5.0
SIM_FAULTS = ("unplug", "stall", "corrupt", "bad_frame", "hash_mismatch", "read_error", "slow")
PROCESS_FAULTS = ("sigkill", "sigterm", "sigterm_storm", "sighup_valid", "sighup_broken",
                  "disk_full", "catalog_lock")
#: faults that end the life they hit
ENDING = ("sigkill", "sigterm", "sigterm_storm")
#: room for the largest run's store several times over: only the ballast fills it
STORE_FS_MIB = 160
#: share of runs with a clone camera, with stored-file damage, with a catalog restore
CLONE_RUNS, DAMAGE_RUNS, RESTORE_RUNS = 0.3, 0.35, 0.3
#: `dockctl verify` findings a catalog restored from an older backup causes truthfully: files
#: stored after the backup, and rows whose file was stored again (or moved aside) since
RESTORE_FINDINGS = ("unknown_file", "stored_hash", "stored_size", "missing")

Say = Callable[[str], None]
#: one recording on one camera: (serial, slot, name)
RecKey = tuple[str, int, str]
#: one recording as the catalog knows it: (serial, name, SHA-256 of its bytes)
Ident = tuple[str, str, str]


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


def _timeline(rng: random.Random, cam: dict[str, Any], pulled: float = 0.2) -> None:
    """Most cameras that leave by themselves come back; some are pulled out for good."""
    if rng.random() < 0.7:
        cam["redock_after_s"] = round(rng.uniform(0.1, 1.0), 2)
    if rng.random() < pulled:
        cam["undock_at_s"] = round(cam["dock_at_s"] + rng.uniform(0.3, 3.0), 2)


def _clone(rng: random.Random, cameras: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A camera with another's serial in a free slot, holding the same recordings (name,
    start, size, bytes) — or, sometimes, one of them a namesake with other bytes — docked
    with it at once or staggered, with faults and a timeline of its own."""
    free = sorted(set(range(1, 9)) - {c["slot"] for c in cameras})
    holding = [c for c in cameras if c["recording"]]
    if not free or not holding:
        return None
    orig = rng.choice(holding)
    recs = [dict(r) for r in orig["recording"]]
    readable = [r for r in recs if r["size"] > 0]  # an empty namesake would be identical
    if readable and rng.random() < 0.35:
        namesake = rng.choice(readable)
        namesake["seed"] = (namesake["seed"] + rng.randrange(1, 1 << 29)) % (1 << 30)
    together = rng.random() < 0.5
    cam: dict[str, Any] = {
        "serial": orig["serial"], "slot": rng.choice(free),
        "link_mb_s": rng.choice([0, 2, 5, 10, 20]),
        "dock_at_s": orig["dock_at_s"] if together else round(orig["dock_at_s"]
                                                              + rng.uniform(0.1, 2.0), 2),
        "recording": recs, "fault": _camera_faults(rng, recs)}
    _timeline(rng, cam, pulled=0.35)  # often while the two race for the same recordings
    return cam


def make_scenario(rng: random.Random, opts: Options) -> tuple[list[dict[str, Any]],
                                                              list[dict[str, Any]]]:
    """Cameras (helpers_ingest.scenario_toml form) and the dock's port faults."""
    clone = opts.max_cameras > 1 and rng.random() < CLONE_RUNS
    slots = rng.sample(range(1, 9), rng.randint(1, opts.max_cameras - int(clone)))
    cameras = []
    for i, slot in enumerate(slots, start=1):
        recs = _recordings(rng, i, int(opts.max_mib * MIB))
        cam: dict[str, Any] = {"serial": f"NC-T{i}-{rng.randrange(10000):04d}", "slot": slot,
                               "link_mb_s": rng.choice([0, 2, 5, 10, 20]),
                               "dock_at_s": rng.choice([0.0, 0.0, round(rng.uniform(0, 2), 2)]),
                               "recording": recs, "fault": _camera_faults(rng, recs)}
        _timeline(rng, cam)
        cameras.append(cam)
    if not any(c["recording"] for c in cameras):  # a run with nothing to lose proves little
        cameras[0]["recording"] = [{"name": "T1_00.MP4", "size": rng.randint(1, 2 * MIB),
                                    "seed": rng.randrange(1 << 30),
                                    "started": "2026-11-25T09:00:00Z"}]
    if clone and (twin := _clone(rng, cameras)) is not None:
        cameras.append(twin)
    ports = [{"slot": rng.choice(slots), "kind": rng.choice(["read_error", "corrupt"]),
              "rate": round(rng.uniform(0.02, 0.3), 3), "seed": rng.randrange(1000)}
             for _ in range(rng.choice([0, 0, 1, 2]))]
    return cameras, ports


def scenario_faults(cameras: list[dict[str, Any]], ports: list[dict[str, Any]]) -> Counter[str]:
    """The scenario's faults by kind, for the campaign's summary."""
    faults: Counter[str] = Counter(
        camera_fault=sum(len(c["fault"]) for c in cameras), port_fault=len(ports),
        undock=sum("undock_at_s" in c for c in cameras))
    first: dict[str, dict[str, Any]] = {}
    for cam in cameras:
        orig = first.setdefault(cam["serial"], cam)
        if orig is not cam:
            faults["clone"] += 1
            seeds = {r["name"]: r["seed"] for r in orig["recording"]}
            faults["namesake"] += sum(seeds[r["name"]] != r["seed"] for r in cam["recording"])
    return faults


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


# --- faults between lives (no daemon runs) -----------------------------------------------


def catalog_files(path: Path) -> list[Path]:
    """The SQLite catalog as a backup must take it: the file, its WAL and shared memory."""
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def backup_catalog(catalog: Path, backup: Path) -> None:
    """Copy the catalog as it is now (what is absent stays absent at a restore)."""
    shutil.rmtree(backup, ignore_errors=True)
    backup.mkdir()
    for path in catalog_files(catalog):
        if path.exists():
            shutil.copy2(path, backup / path.name)


def restore_catalog(catalog: Path, backup: Path) -> None:
    """Put the backup over the current catalog, as an administrator would."""
    for path in catalog_files(catalog):
        saved = backup / path.name
        if saved.exists():
            shutil.copy2(saved, path)
        else:
            path.unlink(missing_ok=True)


def catalog_behind_anchor(env: Env) -> bool:
    """Does the store's anchor file witness a head beyond the catalog's (a restored catalog
    that forgot events)? Then the daemon must say so when it starts."""
    try:
        lines = (env.store / ".audit-anchors").read_text().split("\n")[:-1]  # complete only
    except FileNotFoundError:
        return False
    anchored = max((int(line.split()[0]) for line in lines if line.split()), default=0)
    head = 0
    if env.catalog_path.exists():
        with env.catalog() as catalog:
            head = catalog.head()[0]
    return anchored > head


@dataclass(frozen=True)
class Damage:
    """A stored file this run damaged while its recording was still on a camera."""

    path: Path
    ident: Ident
    kind: str  # remove | truncate | flip
    #: SHA-256 of the damaged file (None: removed)
    after: str | None


def damage_store(env: Env, rng: random.Random, sources: dict[RecKey, str],
                 track: Track) -> str:
    """Remove, truncate or flip a bit of a stored file whose recording a camera still holds
    (the copy dockd must prove before it deletes). Returns the kind, '' when none is held."""
    held = held_idents(sources, holdings(env))
    candidates = {Path(r.store_path): ident_of(r) for r in _rows(env)
                  if r.store_path and ident_of(r) in held and Path(r.store_path).is_file()}
    if not candidates:
        return ""
    path = rng.choice(sorted(candidates))
    before = _sha256(path)
    kind = rng.choice(["remove", "truncate", "flip"])
    if kind == "remove":
        path.unlink()
    else:
        data = bytearray(path.read_bytes())
        if kind == "truncate":
            del data[rng.randrange(len(data)):]
        else:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        with path.open("r+b") as f:  # in place: the inode dockd published stays
            f.write(data)
            f.truncate(len(data))
    # damage on damage not yet seen: only the last state can be found later
    track.damaged = [d for d in track.damaged if not (d.path == path and d.after == before)]
    track.damaged.append(Damage(path, candidates[path], kind,
                                None if kind == "remove" else _sha256(path)))
    return kind


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- reading what happened ---------------------------------------------------------------


def _rows(env: Env) -> list[RecordingRow]:
    if not env.catalog_path.exists():
        return []
    with env.catalog() as catalog:
        return list(catalog.recordings())


def ident_of(row: RecordingRow) -> Ident:
    return (row.camera_serial, row.camera_name, row.camera_sha256)


def slot_sources(env: Env) -> dict[RecKey, str]:
    """(serial, slot, name) → SHA-256 of the recording's true bytes, read from the content
    itself (helpers_ingest.source_sha256 per camera slot: a clone shares its serial)."""
    return {(spec.serial, spec.slot, rec.name.decode()): rec.content.sha256().hex()
            for spec in load_scenario(env.scenario).cameras
            for rec in (SimRecording(r, env.sim_state) for r in spec.recordings)}


def holdings(env: Env) -> dict[tuple[str, int], set[str]]:
    """(serial, slot) → names of the recordings still on that camera."""
    return {(s.spec.serial, s.spec.slot): {r.name.decode() for r in s.recordings()}
            for s in camera_states(env)}


def held_idents(sources: dict[RecKey, str], held: dict[tuple[str, int], set[str]]
                ) -> set[Ident]:
    """Recordings some camera still holds: their bytes are not lost, whichever camera."""
    return {(serial, name, sha) for (serial, slot, name), sha in sources.items()
            if name in held.get((serial, slot), set())}


def _by_serial(held: dict[tuple[str, int], set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for (serial, _slot), names in held.items():
        out.setdefault(serial, set()).update(names)
    return out


@dataclass
class Track:
    """What a run did to the store and the catalog between lives, which the checks must
    know, and the plaintext hashes of stored files decrypted so far."""

    #: the catalog was put back from an older backup
    restored: bool = False
    #: the restored catalog is behind the last anchor: the next start must say so
    witness_due: bool = False
    damaged: list[Damage] = field(default_factory=list)
    _plain: dict[tuple[str, int, int, int], str | None] = field(default_factory=dict)

    def plaintext_sha256(self, env: Env, path: Path) -> str | None:
        """`age -d` with the test identity (once per file version); None when age refuses."""
        st = path.stat()
        key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._plain:
            try:
                self._plain[key] = age_decrypt_sha256(env, path)
            except subprocess.CalledProcessError:
                self._plain[key] = None
        return self._plain[key]

    def found_in_store(self, env: Env, sha: str) -> Path | None:
        """A file anywhere in the store, the quarantine included, decrypting to `sha`."""
        for path in _store_files(env):
            if self.plaintext_sha256(env, path) == sha:
                return path
        return None


def _store_files(env: Env) -> list[Path]:
    """Every finished file under the store: published, unknown or quarantined."""
    if not env.store.is_dir():
        return []
    kept = set(leftovers(env))
    return sorted(p for p in env.store.rglob("*") if p.is_file() and p not in kept
                  and p.name != ".audit-anchors")


def published_files(env: Env) -> list[Path]:
    """Stored files at recording paths (the quarantine is not evidence the catalog names)."""
    quarantine = env.store / QUARANTINE_DIR
    return [p for p in stored_files(env) if quarantine not in p.parents]


def _quarantined_sha256(env: Env) -> set[str]:
    quarantine = env.store / QUARANTINE_DIR
    if not quarantine.is_dir():
        return set()
    return {_sha256(p) for p in quarantine.iterdir() if p.is_file()}


def check_nothing_lost(env: Env, sources: dict[RecKey, str], *, decrypt: bool,
                       track: Track | None = None) -> list[str]:
    """Every recording is on its camera (or a clone holds the same bytes), or catalogued
    verified with its file present: its SHA-256 the catalogued one, or with `decrypt`, its
    plaintext the source's. After a catalog restore a file anywhere in the store that
    decrypts to the source bytes counts too (the restored catalog may not know it)."""
    track = track or Track()
    problems = []
    held = held_idents(sources, holdings(env))
    rows: dict[Ident, list[RecordingRow]] = {}
    for row in _rows(env):
        rows.setdefault(ident_of(row), []).append(row)
    problems += [f"{ident[:2]}: catalogued {len(same)} times"
                 for ident, same in rows.items() if len(same) > 1]
    for key, sha in sources.items():
        ident = (key[0], key[2], sha)
        if ident in held:
            continue
        why = _no_good_copy(env, rows.get(ident, []), sha, decrypt=decrypt, track=track)
        if why and not (track.restored and track.found_in_store(env, sha)):
            problems.append(f"{key}: {why}")
    return problems


def _no_good_copy(env: Env, rows: list[RecordingRow], sha: str, *, decrypt: bool,
                  track: Track) -> str:
    """'' when one of the rows (the catalog's for the bytes `sha`) is a verified copy of
    them; else why not."""
    good = [r for r in rows if r.status in ("verified", "deleted_from_camera")]
    if not good:
        return (f"gone from the camera without a verified copy "
                f"(catalog: {[r.status.value for r in rows]})")
    why = ""
    for row in good:
        path = Path(row.store_path or "")
        if not row.store_path or not path.is_file():
            why = f"gone from the camera, stored file {path} missing"
        elif decrypt and track.plaintext_sha256(env, path) != sha:
            why = f"{path} does not decrypt to the source bytes"
        elif not decrypt and _sha256(path) != row.stored_sha256:
            why = f"{path} is not the stored file the catalog vouches for"
        else:
            return ""
    return why


def orphan_keys(env: Env) -> list[Path]:
    """Resume sidecars (each holds a file key) and their temp files whose partial is gone:
    key material must never outlive the partial it was for."""
    found = set(leftovers(env))
    return sorted(p for p in found if ".partial.resume" in p.name
                  and p.with_name(p.name.split(".partial.resume")[0] + ".partial") not in found)


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


def check_damage(env: Env, track: Track, held: set[Ident]) -> list[str]:
    """A recording whose stored copy this run damaged left its last camera only after dockd
    found the damage: the damaged file is in the quarantine (a restored catalog may not know
    the path any more: then anywhere in the store). Its good copy: check_nothing_lost."""
    problems = []
    moved_aside = _quarantined_sha256(env)
    if track.restored:
        moved_aside |= {_sha256(p) for p in _store_files(env)}
    for d in track.damaged:
        if d.ident not in held and d.after is not None and d.after not in moved_aside:
            problems.append(f"{d.ident[:2]}: its stored file {d.path} was damaged ({d.kind}) "
                            "while a camera held it; the camera no longer does, and the "
                            "damaged file is not in the quarantine")
    return problems


def _excused(finding: dict[str, Any], track: Track, held: set[Ident],
             anchors_only: bool) -> bool:
    """A `dockctl verify` finding this run's own tampering explains truthfully."""
    if track.restored and (finding.get("problem") in RESTORE_FINDINGS or (
            # the anchors the restore went behind reject the events after them
            finding.get("problem") == "chain_event" and anchors_only)):
        return True
    for d in track.damaged:  # damage dockd has not met yet: its camera still holds it
        if str(d.path) == finding.get("path") and d.ident in held:
            state = _sha256(d.path) if d.path.is_file() else None
            if state == d.after:
                return True
    return False


def verify_problems(env: Env, track: Track, held: set[Ident]) -> list[str]:
    """`dockctl verify --json` (the real CLI) passes, but for what this run's tampering
    explains: after a restore, unknown files, stale rows, disagreeing anchors and the events
    they reject; damage (ours) to a copy whose camera still holds the recording. A restore
    never excuses decryption, plaintext, size or key-material findings, nor a chain broken
    in itself."""
    proc = subprocess.run([str(DOCKCTL), "verify", "--config", str(env.config), "--identity",
                           str(env.key_file), "--json"], capture_output=True, text=True,
                          timeout=300, check=False)
    if proc.returncode == 0:
        return []
    failed = f"dockctl verify exited {proc.returncode}: "
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        return [failed + f"{proc.stdout.strip()[-800:]} {proc.stderr.strip()[-400:]}"]
    chain = report["chain_problems"]
    anchors_only = all(p["problem"] == "anchor" for p in chain)
    left = [f["message"] for f in report["findings"]
            if not _excused(f, track, held, anchors_only)]
    left += [p["message"] for p in chain if not (track.restored and p["problem"] == "anchor")]
    if left or proc.returncode != 7:
        return [failed + "; ".join(left)[:1200] + f" {proc.stderr.strip()[-400:]}"]
    return []


def check_final(env: Env, sources: dict[RecKey, str], final_rc: int,
                final_events: list[dict[str, Any]], track: Track | None = None) -> list[str]:
    """The invariants after the final clean run (docs/testing.md numbers them)."""
    track = track or Track()
    problems = check_nothing_lost(env, sources, decrypt=True, track=track)
    hold = holdings(env)
    held = held_idents(sources, hold)
    rows = _rows(env)
    # stored exactly once: one file per stored row, no file without its row (a restored
    # catalog forgets what was stored after its backup: loss is checked by decryption above)
    paths = [r.store_path for r in rows if r.store_path]
    if len(paths) != len(set(paths)):
        problems.append("two catalog rows share one stored file")
    files = sorted(str(p) for p in published_files(env))
    if sorted(paths) != files and not track.restored:
        problems.append(f"store and catalog disagree: files without rows "
                        f"{sorted(set(files) - set(paths))}, rows without files "
                        f"{sorted(set(paths) - set(files))}")
    problems += _rows_against_cameras(rows, sources, hold, _final_reasons(final_events),
                                      track)
    # the daemon's verdict agrees: exit 0 only when every camera is empty
    left = sum(len(n) for n in hold.values())
    if (final_rc == 0) != (left == 0):
        problems.append(f"final run exited {final_rc} with {left} recordings on cameras")
    if final_rc not in (0, 6):
        problems.append(f"final run exited {final_rc}")
    if stray := unexplained_leftovers(env, _by_serial(hold)):
        problems.append(f"temporary files after the final clean run: {stray}")
    with env.catalog() as catalog:
        problems += [f"audit chain: {p.message}" for p in catalog.verify_chain()]
    problems += check_damage(env, track, held)
    return problems + verify_problems(env, track, held)


def _final_reasons(events: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """(serial, slot, name) of every recording a `dock_session` line gives a failure for."""
    return {(e.get("serial"), e.get("slot"), f.split(": ", 1)[0]) for e in events
            if e.get("event") == "dock_session" for f in e.get("failures", [])}


def _described(row: RecordingRow, sources: dict[RecKey, str]) -> list[RecKey]:
    """The cameras' recordings a catalog row is about: same serial and name, and the row's
    SHA-256 (a clone's identical copy is the same recording, a namesake is not). A row whose
    SHA-256 is no source's holds the camera's wrong claim (a `hash_mismatch` flaw of the
    flash): it is about every namesake."""
    same = {k: sha for k, sha in sources.items()
            if (k[0], k[2]) == (row.camera_serial, row.camera_name)}
    return [k for k, sha in same.items() if sha == row.camera_sha256] or list(same)


def _rows_against_cameras(rows: list[RecordingRow], sources: dict[RecKey, str],
                          hold: dict[tuple[str, int], set[str]], reasons: set[tuple[Any, ...]],
                          track: Track) -> list[str]:
    """The catalog agrees with the cameras: a row only for what a camera held; nothing left
    `transferring`; `deleted_from_camera` exactly when no camera holds it (a clone that still
    does gives its reason); any other status only while a camera holds it (after a restore
    the catalog may be behind: the loss check decrypts instead); every recording still on a
    camera has a reason in the final run's `dock_session` lines, or a `failed` row with one."""
    problems = []
    explained = set(reasons)
    for r in rows:
        label, status = f"{r.camera_serial}/{r.camera_name}", r.status.value
        about = _described(r, sources)
        there = [k for k in about if k[2] in hold.get(k[:2], set())]
        if not about:
            problems.append(f"{label}: a catalog row for a recording no camera held")
        if status == "transferring":  # the final run was not killed: no attempt left open
            problems.append(f"{label}: left in status {status}")
        if status == "deleted_from_camera" and [k for k in there if k not in reasons]:
            problems.append(f"{label}: catalog says deleted, camera still holds it")
        if status != "deleted_from_camera" and not there and not track.restored:
            problems.append(f"{label}: off the camera but the catalog says {status}")
        if status == "failed" and r.failure_reason:
            explained |= set(there)
    for (serial, slot), names in hold.items():
        problems += [f"{serial}/{name} (slot {slot}): still on the camera without a reason"
                     for name in sorted(names) if (serial, slot, name) not in explained]
    return problems


# --- one run -------------------------------------------------------------------------------


class Life:
    """One start of `dockd run --once`, and what happens to it."""

    def __init__(self, env: Env, log_path: Path, *, reset: bool) -> None:
        self.log_path = log_path
        self.proc = start_daemon(env, log_path, reset=reset)
        self.stormed = False
        #: processes holding the catalog locked, and until when (monotonic)
        self.lockers: list[tuple[subprocess.Popen[str], float]] = []

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

    def wait_caught(self, signum: int, timeout_s: float) -> bool:
        """Wait until the process has a handler for `signum` (SigCgt in /proc/PID/status):
        before that, a signal's default action ends it, whatever the daemon's code says."""
        deadline = time.monotonic() + timeout_s
        while self.alive() and time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, StopIteration):
                status = Path(f"/proc/{self.proc.pid}/status").read_text()
                caught = next(ln for ln in status.splitlines() if ln.startswith("SigCgt:"))
                if int(caught.split()[1], 16) >> (signum - 1) & 1:
                    return True
            time.sleep(0.002)
        return False

    def lock_catalog(self, path: Path, seconds: float) -> None:
        self.lockers.append((lock_catalog(path, seconds), time.monotonic() + seconds))

    def lock_left(self) -> float:
        """How long a catalog lock still holds (a stop has to wait for it to close)."""
        return max([until - time.monotonic() for _, until in self.lockers], default=0.0)

    def release(self) -> None:
        for locker, _ in self.lockers:
            locker.wait(timeout=30)


def _storm(life: Life, rng: random.Random) -> str:
    """2-6 SIGTERMs a few ms apart: handlers only set a flag, so the daemon stops promptly
    (within STORM_TIMEOUT_S, plus what is left of a catalog lock it must wait out)."""
    life.stormed = True
    for _ in range(rng.randint(2, 6)):
        life.signal(signal.SIGTERM)
        time.sleep(rng.uniform(0.001, 0.008))
    bound = STORM_TIMEOUT_S + life.lock_left()
    if life.end(bound) is None:
        return f"did not stop within {bound:.1f} s of a SIGTERM storm"
    return ""


def _inject(life: Life, kind: str, env: Env, rng: random.Random, fs: StoreFs | None,
            good_config: str, result: RunResult) -> str:
    """One process-level fault; returns a violation message or ''."""
    result.faults[kind] += 1
    if kind == "sigkill":
        life.signal(signal.SIGKILL)
    elif kind == "sigterm":
        life.signal(signal.SIGTERM)
        if life.end(TERM_TIMEOUT_S) is None:
            return f"did not stop within {TERM_TIMEOUT_S} s of SIGTERM"
    elif kind == "sigterm_storm":
        return _storm(life, rng)
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
        life.lock_catalog(env.catalog_path, rng.uniform(0.5, 4.0))
    return ""


@dataclass(frozen=True)
class Step:
    """One planned process-level fault: `delay_s` after the previous one (or after
    `dockd_started`; with `at_start`, after the process installed its SIGTERM handler, in
    start-up), of `kind`, its own details drawn from `seed`."""

    delay_s: float
    kind: str
    seed: int
    at_start: bool = False


def plan_life(rng: random.Random, kinds: list[str]) -> list[Step]:
    """Drawn before the run starts, so a replay plans the same faults whatever the
    daemon's timing does (a step meets a process that already ended: it is skipped).
    Sometimes a SIGTERM storm during start-up, before `dockd_started`, and nothing else."""
    if "sigterm_storm" in kinds and rng.random() < 0.08:
        return [Step(round(rng.uniform(0.0, 0.3), 3), "sigterm_storm", rng.randrange(1 << 30),
                     at_start=True)]
    return [Step(round(rng.uniform(0.0, 1.5), 3), rng.choice(kinds), rng.randrange(1 << 30))
            for _ in range(rng.choice([0, 1, 2, 2, 3, 4]))]


@dataclass(frozen=True)
class Gap:
    """Something done to the catalog or the store while no daemon runs: a `catalog_backup`,
    a `catalog_restore` (of that backup), or `store_damage` (details drawn from `seed`)."""

    kind: str
    seed: int = 0


@dataclass
class RunPlan:
    """A run's lives, drawn before anything runs."""

    lives: list[list[Step]]
    #: lives with `delete_after_ingest = false`: copies stay on the cameras
    keeping: list[bool]
    #: gaps[n]: what happens before life n+1; gaps[-1]: before the final clean run
    gaps: list[list[Gap]]


def plan_run(rng: random.Random, kinds: list[str], max_lives: int) -> RunPlan:
    lives = [plan_life(rng, kinds) for _ in range(rng.randint(1, max_lives))]
    n = len(lives)
    damaging = rng.random() < DAMAGE_RUNS
    plan = RunPlan(lives, [damaging and rng.random() < 0.6 for _ in lives],
                   [[] for _ in range(n + 1)])
    if damaging:  # mostly after a life that left its copies on the cameras
        for kept, gap in zip(plan.keeping, plan.gaps[1:], strict=True):
            if rng.random() < (0.9 if kept else 0.3):
                gap.append(Gap("store_damage", rng.randrange(1 << 30)))
    if n >= 2 and rng.random() < RESTORE_RUNS:
        backup = rng.randint(1, n - 1)
        plan.gaps[backup].insert(0, Gap("catalog_backup"))
        plan.gaps[rng.randint(backup + 1, n)].insert(0, Gap("catalog_restore"))
    return plan


def _between(env: Env, gaps: list[Gap], sources: dict[RecKey, str], track: Track,
             result: RunResult, backup: Path) -> None:
    """The gap between two lives: no daemon runs, the administrator (or a disk) acts."""
    for gap in gaps:
        if gap.kind == "catalog_backup":
            backup_catalog(env.catalog_path, backup)
            result.notes["catalog_backup"] += 1
        elif gap.kind == "catalog_restore":
            restore_catalog(env.catalog_path, backup)
            result.faults["catalog_restore"] += 1
            track.restored = True
            track.witness_due = catalog_behind_anchor(env)
        elif gap.kind == "store_damage":
            kind = damage_store(env, random.Random(gap.seed), sources, track)
            result.faults["store_damage"] += bool(kind)
            result.notes[f"damage_{kind}" if kind else "damage_no_copy_on_a_camera"] += 1


def keeping_config(good: str) -> str:
    """The config with `delete_after_ingest = false`: stored copies stay on the cameras."""
    return good.replace("[ingest]\n", "[ingest]\ndelete_after_ingest = false\n", 1)


def _one_life(env: Env, log_path: Path, steps: list[Step], *, first: bool,
              fs: StoreFs | None, good_config: str, result: RunResult) -> list[str]:
    problems: list[str] = []
    life = Life(env, log_path, reset=first)
    if steps and steps[0].at_start:  # a storm during start-up, before dockd_started
        if life.wait_caught(signal.SIGTERM, 60.0) and life.sleep(steps[0].delay_s):
            result.notes["storm_at_startup"] += 1
            problems += _step(life, steps[0], env, fs, good_config, result)
    elif not life.wait_event("dockd_started", 0, 60.0):
        if life.alive():
            problems.append("no dockd_started within 60 s")
    else:
        for step in steps:
            if not life.sleep(step.delay_s):
                break
            problems += _step(life, step, env, fs, good_config, result)
            if step.kind in ENDING:
                break
    rc = life.end(LIFE_TIMEOUT_S)
    life.release()
    return problems + _judge_exit(life, rc, result)


def _step(life: Life, step: Step, env: Env, fs: StoreFs | None, good_config: str,
          result: RunResult) -> list[str]:
    msg = _inject(life, step.kind, env, random.Random(step.seed), fs, good_config, result)
    _write_atomic(env.config, good_config)  # the next life starts on a good one
    return [f"{step.kind}: {msg}"] if msg else []


def _judge_exit(life: Life, rc: int | None, result: RunResult) -> list[str]:
    """No hang, no crash: exit 0, 6 or our SIGKILL, never a traceback; after a SIGTERM
    storm exit 0."""
    text = life.log_path.read_text(errors="replace")
    problems = ["a traceback in the log: " + _tail(life.log_path)] if "Traceback" in text else []
    if rc is None:
        return [*problems, f"hung: still running after {LIFE_TIMEOUT_S} s"]
    if rc in (-signal.SIGHUP, -signal.SIGTERM) and '"event": "dockd_stopped"' in text:
        # the signal met the interpreter's shutdown (handlers are reset to the default
        # there) after all work was done and logged: nothing was in flight
        result.notes["signal_during_exit"] += 1
    elif life.stormed and rc == 6 and _finished_before(text):
        result.notes["storm_after_the_work"] += 1
    elif life.stormed and rc not in (0, -signal.SIGKILL):  # SIGKILL: we ended a hang
        problems.append(f"exited {rc} after a SIGTERM storm: " + _tail(life.log_path))
    elif rc not in (0, 6, -signal.SIGKILL):
        problems.append(f"exited {rc}: " + _tail(life.log_path))
    return problems


def _finished_before(text: str) -> bool:
    """The run had stopped by itself (not interrupted) when the signals came."""
    return any(e.get("event") == "dockd_stopped" and e.get("interrupted") is False
               for e in map(_json_or_none, text.splitlines()) if isinstance(e, dict))


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _witness_problems(track: Track, log_path: Path) -> list[str]:
    """The first start after a restore behind the last anchor says so."""
    text = log_path.read_text(errors="replace")
    if not track.witness_due or '"event": "dockd_started"' not in text:
        return []  # not due, or that start did not get as far: the next one must
    track.witness_due = False
    if '"event": "audit_chain_disagrees_with_witness"' in text:
        return []
    return ["started on a catalog restored behind the store's last anchor without "
            "audit_chain_disagrees_with_witness"]


NOTED = ("stored_file_adopted", "stored_file_quarantined", "stored_copy_damaged",
         "audit_chain_disagrees_with_witness", "recording_held_by_another_session",
         "partial_removed", "config_reloaded", "config_reload_refused",
         "previous_run_did_not_stop_cleanly", "camera_delete_confirmed",
         "camera_delete_repeated")


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


def _after_life(env: Env, log_path: Path, sources: dict[RecKey, str], track: Track,
                result: RunResult) -> list[str]:
    """What every life must leave: nothing lost, no file key without its partial, and the
    witness heard."""
    _note_events(log_path, result)
    problems = _witness_problems(track, log_path)
    problems += check_nothing_lost(env, sources, decrypt=False, track=track)
    if keys := orphan_keys(env):
        problems.append(f"resume state (a file key) without its partial: {keys}")
    return problems


def _final_run(env: Env, root: Path, cameras: list[dict[str, Any]], sources: dict[RecKey, str],
               track: Track, result: RunResult) -> None:
    """The final clean run: calm dock, room in the store, nobody interfering (once more if
    it exits 6), then every invariant."""
    env.scenario.write_text(final_scenario(cameras))
    for attempt in (1, 2):
        log_path = root / f"final{attempt}.log"
        rc = Life(env, log_path, reset=False).end(LIFE_TIMEOUT_S)
        result.violations += [f"final run: {p}" for p in
                              _after_life(env, log_path, sources, track, result)]
        if rc is None:
            result.violations.append("final clean run hung")
            break
        if rc == 0:
            break
    if "Traceback" in log_path.read_text(errors="replace"):
        result.violations.append("final run: a traceback: " + _tail(log_path))
    result.violations += check_final(env, sources, rc if rc is not None else -1,
                                     tolerant_events(log_path), track)
    result.left_on_camera = sum(len(v) for v in holdings(env).values())
    result.stored = len(sources) - result.left_on_camera


def run_one(seed: int, workdir: Path, opts: Options, say: Say = print) -> RunResult:
    """One seeded run: a scenario, up to `max_lives` daemon lives under faults (and the
    catalog and store tampered with between them), a final clean run, every invariant."""
    rng = random.Random(seed)
    result = RunResult(seed)
    root = Path(tempfile.mkdtemp(prefix=f"torture-{seed}-", dir=workdir))
    fs = StoreFs.mount(root / "fs", say) if opts.mount and rng.random() < 0.5 else None
    try:
        cameras, ports = make_scenario(rng, opts)
        store = fs.mnt / "evidence" if fs else root / "evidence"
        env = make_env(root, store=store, scenario_text=render_scenario(cameras, ports))
        good_config = env.config.read_text()
        sources = slot_sources(env)
        result.recordings = len(sources)
        result.faults += scenario_faults(cameras, ports)
        kinds = [k for k in PROCESS_FAULTS if (k != "disk_full" or fs is not None)
                 and (not k.startswith("sighup") or _sighup_handled())]
        plan = plan_run(rng, kinds, opts.max_lives)
        track = Track()
        for n, steps in enumerate(plan.lives, start=1):
            _between(env, plan.gaps[n - 1], sources, track, result, root / "backup")
            config = keeping_config(good_config) if plan.keeping[n - 1] else good_config
            result.notes["lives_keeping_copies"] += plan.keeping[n - 1]
            _write_atomic(env.config, config)
            result.lives += 1
            log_path = root / f"life{n:02d}.log"
            problems = _one_life(env, log_path, steps, first=(n == 1), fs=fs,
                                 good_config=config, result=result)
            problems += _after_life(env, log_path, sources, track, result)
            result.violations += [f"life {n}: {p}" for p in problems]
        _between(env, plan.gaps[-1], sources, track, result, root / "backup")
        _write_atomic(env.config, good_config)
        _final_run(env, root, cameras, sources, track, result)
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


CampaignT = TypeVar("CampaignT", bound=Campaign)


def run_seed(base: int, index: int) -> int:
    """Run `index` of a campaign started with `base`: a seed of its own, so one run replays
    alone (`--seed` that seed, `--runs 1`)."""
    return base if index == 0 else random.Random(base * 1_000_003 + index).randrange(1 << 31)


def campaign(seed: int, runs: int | None, minutes: float | None, workdir: Path,
             opts: Options, say: Say = print) -> Campaign:
    """Runs until `runs` are done or `minutes` have passed (whichever is given first)."""
    return run_campaign(Campaign(), seed, runs, minutes,
                        lambda run: run_one(run, workdir, opts, say), opts.replay, say)


def run_campaign(total: CampaignT, seed: int, runs: int | None, minutes: float | None,
                 one: Callable[[int], RunResult], replay: Callable[[int], str],
                 say: Say) -> CampaignT:
    """The campaign loop every torture mode shares: run seeds until `runs` or `minutes`,
    one line per run, each violation with its replay command, totals at the end."""
    deadline = time.monotonic() + minutes * 60 if minutes else None
    index = 0
    while (runs is None or index < runs) and (deadline is None or time.monotonic() < deadline):
        run = run_seed(seed, index)
        index += 1
        t0 = time.monotonic()
        result = one(run)
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
            say(f"  replay: {replay(run)}")
    say(f"faults by kind: {_faults(total.faults)}; daemon lives: {total.lives}; "
        f"notes: {_faults(total.notes) or 'none'}")
    if total.failing:
        say("failing seeds: " + " ".join(map(str, total.failing)))
    return total


def _faults(faults: Counter[str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(faults.items()) if v)
