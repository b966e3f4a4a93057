"""Cameras that are a directory (the folder driver) under the real `dockd run --once` process,
with the real watchers: a loop-mounted ext4 or vfat volume (bus `volume`, found in the mount
table) and an export folder with one sub-folder per camera (bus `folder`).

Each test plants one fault and checks the promise: every listed recording ends stored
(verified, decrypting with the real `age` to its exact source bytes, gone from the camera)
or failed/refused with its reason in the `dock_session` line and in `dockctl recordings`,
still on the camera; nothing outside the camera's directory is read or deleted (a canary
file outside, reached by symlinks inside, keeps its bytes and its atime, and its content is
never catalogued); every `deleted_from_camera` audit event carries its proof.

Loop devices need root: those tests skip with the reason where losetup or mount is refused.
vfat needs mkfs.vfat (Debian: dosfstools).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers_ingest import AGE, DOCKD, EXIT_INCOMPLETE, make_env, parse_events

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not AGE.exists(), reason="the age binary is not installed (apt-get "
                       "install age)"),
]

DOCKCTL = DOCKD.with_name("dockctl")
MIB = 1 << 20
#: `dockd run --once` may not take longer than this in any of these tests
RUN_TIMEOUT_S = 60
#: the daemon's peak resident set reading a recording-sized file (bounded memory)
MAX_RSS_MIB = 256
#: a sparse file of a long recording's size (1 GiB: a 2 GiB one doubles the test's time)
SPARSE_SIZE = 1 << 30
#: mtime of files planted before a run: long settled
OLD = time.time() - 3600


# --- files -------------------------------------------------------------------------------


def write_random(path: Path, size: int, *, mtime: float | None = OLD) -> str:
    """A file of `size` random bytes (parents made); its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * MIB))
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return digest.hexdigest()


def sha256_path(path: Path | bytes) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_prefix(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        left = size
        while left and (chunk := f.read(min(left, 4 * MIB))):
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def tree(path: Path) -> dict[str, tuple[str, int]]:
    """Every entry under path: kind and, for a regular file, size (what is left where)."""
    out = {}
    for root, dirs, files in os.walk(os.fsencode(path)):
        for name in dirs + files:
            full = os.path.join(root, name)
            st = os.lstat(full)
            rel = os.fsdecode(os.path.relpath(full, os.fsencode(path)))
            kind = ("dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode)
                    else "link" if stat.S_ISLNK(st.st_mode) else "special")
            out[rel] = (kind, st.st_size if kind == "file" else 0)
    return out


def fs_free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bfree * st.f_frsize  # root writes into the reserved blocks too


# --- the daemon's world ------------------------------------------------------------------


@dataclass
class Result:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    seconds: float
    max_rss_mib: float

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def session(self, serial: str) -> dict[str, Any]:
        """The one dock_session line of a camera."""
        [line] = [e for e in self.named("dock_session") if e.get("serial") == serial]
        return line

    def failures(self, serial: str) -> dict[str, str]:
        """name → reason, from the camera's dock_session line."""
        out = {}
        for item in self.session(serial)["failures"]:
            name, _, why = item.partition(": ")
            out[name] = why
        return out

    def transfers(self, recording: str) -> list[dict[str, Any]]:
        return [e for e in self.named("transfer") if e.get("recording") == recording]


class World:
    """One test's daemon: key, JSON-logging config, store, catalog (helpers_ingest.make_env),
    a drop-in directory for the folder rules, and a canary outside every camera."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # 16 MiB checkpoints: make_env's 1 MiB fsyncs too often for files of 100 MB
        self.env = make_env(root, ingest={"checkpoint_mib": 16})
        self.dropins = root / "drivers.d"
        self.dropins.mkdir()
        with self.env.config.open("a") as f:
            f.write(f"[drivers]\ndropin_dir = {json.dumps(str(self.dropins))}\n")
        self.runs = 0
        self._started = 0.0
        self.procs: list[subprocess.Popen[bytes]] = []
        # the canary, and a copy in a folder below it: what symlinks inside point at
        self.outside = root / "outside"
        self.canary = self.outside / "canary.mp4"
        self.canary_bytes = os.urandom(256 * 1024)
        (self.outside / "inner").mkdir(parents=True)
        self.canary.write_bytes(self.canary_bytes)
        (self.outside / "inner" / "also.mp4").write_bytes(self.canary_bytes)
        # atime older than a day: any read under relatime would move it
        for path in (self.canary, self.outside / "inner" / "also.mp4"):
            os.utime(path, (time.time() - 2 * 86400, time.time() - 3 * 86400))
        self.canary_stat = self.canary.stat()
        self.canary_sha = hashlib.sha256(self.canary_bytes).hexdigest()

    # --- rules -------------------------------------------------------------------------

    def volume_rule(self, label: str, **options: Any) -> None:
        self._rule("volume", f"fs_label_pattern = {json.dumps('^' + label + '$')}",
                   {"serial_from": ["label"], "settle_s": 0, **options})

    def folder_rule(self, export: Path, **options: Any) -> None:
        self._rule("folder", f"root = {json.dumps(str(export))}",
                   {"settle_s": 0, **options})

    def _rule(self, bus: str, select: str, options: dict[str, Any]) -> None:
        lines = ["[[match]]", 'driver = "folder"', f'bus = "{bus}"', select,
                 "[match.options]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in options.items()]
        (self.dropins / f"{bus}.toml").write_text("\n".join(lines) + "\n")

    # --- running -------------------------------------------------------------------------

    def start(self, *, user: str | None = None) -> subprocess.Popen[bytes]:
        argv = [str(DOCKD), "run", "--config", str(self.env.config), "--once"]
        if user is not None:
            argv = ["runuser", "-u", user, "--", *argv]
        self.runs += 1  # one log pair per run, all kept
        self._started = time.monotonic()
        with self.log("stdout").open("wb") as out, self.log("stderr").open("wb") as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=self.root)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """A daemon a failed test left running is killed (before its volume goes)."""
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                proc.wait(10)

    def log(self, stream: str) -> Path:
        return self.root / f"{stream}-{self.runs}.log"

    def finish(self, proc: subprocess.Popen[bytes]) -> Result:
        """Reap the daemon ourselves (peak RSS from wait4); it must end by itself."""
        deadline = self._started + RUN_TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"dockd did not end by itself within {RUN_TIMEOUT_S} s:\n"
                            + self.log("stdout").read_text()[-3000:])
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
        return Result(proc.returncode, parse_events(self.log("stdout").read_text()),
                      self.log("stderr").read_text(),
                      time.monotonic() - self._started, usage.ru_maxrss / 1024)

    def run(self, *, user: str | None = None) -> Result:
        return self.finish(self.start(user=user))

    # --- what the catalog says -----------------------------------------------------------

    def dockctl(self, *args: str) -> Any:
        done = subprocess.run([str(DOCKCTL), *args, "--config", str(self.env.config),
                               "--json"], capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def recordings(self, serial: str) -> dict[str, list[dict[str, Any]]]:
        """camera name → its rows (`dockctl recordings`), oldest first."""
        out: dict[str, list[dict[str, Any]]] = {}
        for row in self.dockctl("recordings", "--camera", serial):
            out.setdefault(row["camera_name"], []).append(row)
        return out

    def audit(self) -> list[dict[str, Any]]:
        found = self.dockctl("audit")
        assert found["chain"]["ok"], found["chain"]
        return list(found["events"])

    def decrypt_sha256(self, path: str) -> str:
        """SHA-256 of the plaintext `age` decrypts from a stored file (streamed)."""
        digest = hashlib.sha256()
        with subprocess.Popen([str(AGE), "-d", "-i", str(self.env.key_file), path],
                              stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            while chunk := proc.stdout.read(4 * MIB):
                digest.update(chunk)
        assert proc.returncode == 0, f"age could not decrypt {path}"
        return digest.hexdigest()

    # --- the promise ---------------------------------------------------------------------

    def check(self, result: Result, serial: str, camera: Path | None,
              sources: dict[str, str], *, stored: set[str], kept: dict[str, str],
              deleted: set[str] | None = None) -> None:
        """`stored`: verified, decrypting to `sources[name]`; of those, `deleted` (default:
        all) are deleted on the camera, proven. `kept`: name → a reason's text, found in the
        dock_session line and `dockctl recordings`; no stored copy; a source still on the
        camera unchanged. No other recording in the catalog. `camera` None: the volume is
        not readable any more (not looked at)."""
        deleted = stored if deleted is None else deleted
        every_row = self.dockctl("recordings")
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in every_row:
            if row["camera_serial"] == serial:
                rows.setdefault(row["camera_name"], []).append(row)
        assert set(rows) == stored | set(kept), rows.keys()
        failures = result.failures(serial)
        for name in stored:
            good = [r for r in rows[name] if r["status"] in ("verified", "deleted_from_camera")]
            assert len(good) == 1, (name, rows[name])
            row = good[0]
            assert row["plaintext_sha256"] == sources[name], name
            assert self.decrypt_sha256(row["store_path"]) == sources[name], f"{name}: wrong bytes"
            if name in deleted:
                assert row["status"] == "deleted_from_camera", (name, row)
                if camera is not None:
                    assert not (camera / name).exists(), f"{name} still on the camera"
        for name, why in kept.items():
            assert why in failures.get(name, ""), (name, failures)
            assert all(r["status"] not in ("verified", "deleted_from_camera")
                       for r in rows[name]), rows[name]
            assert any(why in (r["failure_reason"] or "") for r in rows[name]), rows[name]
            if camera is not None and name in sources:
                assert sha256_path(camera / name) == sources[name], f"{name} changed on camera"
        assert result.session(serial)["stored"] == len(stored - set(kept))
        self.check_deletes_proven(every_row)
        self.check_canary(every_row)

    def check_deletes_proven(self, every_row: list[dict[str, Any]] | None = None) -> None:
        """Every delete on a camera is an audit event with its proof, for a stored copy the
        chain knows; every row deleted on its camera has such an event."""
        events = self.audit()
        rows = {r["id"]: r for r in every_row or self.dockctl("recordings")}
        deleted_ids = set()
        for event in events:
            if event["kind"] != "deleted_from_camera":
                continue
            proof = event["details"].get("proof")
            assert proof, event
            assert proof["how"] in ("written", "rehashed"), event
            row = rows[event["recording_id"]]
            assert proof["stored_sha256"] == row["stored_sha256"], (event, row)
            assert proof["size"] == row["stored_size"], (event, row)
            deleted_ids.add(event["recording_id"])
        assert {i for i, r in rows.items() if r["status"] == "deleted_from_camera"} <= deleted_ids

    def check_canary(self, every_row: list[dict[str, Any]] | None = None) -> None:
        """Nothing outside the cameras was read, changed, deleted or catalogued."""
        st = self.canary.stat()  # stat first: our own read below moves the atime
        assert (st.st_ino, st.st_size, st.st_mtime_ns) == (
            self.canary_stat.st_ino, self.canary_stat.st_size, self.canary_stat.st_mtime_ns)
        assert st.st_atime_ns == self.canary_stat.st_atime_ns, "the canary was read"
        assert self.canary.read_bytes() == self.canary_bytes
        assert (self.outside / "inner" / "also.mp4").read_bytes() == self.canary_bytes
        rows = every_row or self.dockctl("recordings")
        assert all(r["plaintext_sha256"] != self.canary_sha for r in rows)
        self.canary_stat = self.canary.stat()  # our own read above: the next check's base


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Tests name it after make_volume: torn down first, its daemon never outlives a mount."""
    world = World(tmp_path)
    try:
        yield world
    finally:
        world.close()


def new_label() -> str:
    """A filesystem label no other mount on this machine has (vfat: ≤ 11, upper case)."""
    return "BWCT" + secrets.token_hex(3).upper()


# --- loop-mounted volumes ----------------------------------------------------------------


def _sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)


def is_mounted(mnt: Path) -> bool:
    text = Path("/proc/self/mountinfo").read_text()
    target = str(mnt).replace(" ", "\\040")
    return any(line.split()[4] == target for line in text.splitlines())


@dataclass
class LoopVolume:
    """A filesystem image on a loop device, mounted the way an automounter would."""

    image: Path
    mnt: Path
    label: str
    device: str = ""

    def mount(self) -> None:
        done = _sh("mount", self.device, str(self.mnt))
        assert done.returncode == 0, done.stderr

    def umount_lazy(self) -> None:
        done = _sh("umount", "-l", str(self.mnt))
        assert done.returncode == 0, done.stderr

    def close(self) -> None:
        for _ in range(50):
            if not is_mounted(self.mnt):
                break
            _sh("umount", "-l", str(self.mnt))
        if self.device:
            _sh("losetup", "-d", self.device)


@pytest.fixture
def make_volume(tmp_path: Path) -> Iterator[Callable[..., LoopVolume]]:
    """make_volume(fs="ext4"|"vfat", size_mib=...): a fresh image, formatted with a new label,
    on its own loop device, mounted under tmp_path (unmounted lazily and detached after the
    test). Skips with the reason where that is not permitted."""
    made: list[LoopVolume] = []

    def make(fs: str = "ext4", size_mib: int = 64) -> LoopVolume:
        if os.geteuid() != 0:
            pytest.skip("loop devices and mounts need root")
        if fs not in Path("/proc/filesystems").read_text().split():
            pytest.skip(f"this kernel cannot mount {fs} (not in /proc/filesystems)")
        label = new_label()
        vol = LoopVolume(tmp_path / f"{fs}-{len(made)}.img", tmp_path / f"mnt{len(made)}",
                         label)
        vol.mnt.mkdir()
        with vol.image.open("wb") as f:
            f.truncate(size_mib * MIB)  # sparse
        if fs == "vfat":
            if shutil.which("mkfs.vfat") is None:
                pytest.skip("mkfs.vfat is not installed (Debian: dosfstools)")
            done = _sh("mkfs.vfat", "-n", label, str(vol.image))
        else:
            done = _sh("mkfs.ext4", "-q", "-L", label, str(vol.image))
        assert done.returncode == 0, done.stderr
        done = _sh("losetup", "--find", "--show", str(vol.image))
        if done.returncode != 0:
            pytest.skip(f"losetup is not permitted here: {done.stderr.strip()}")
        vol.device = done.stdout.strip()
        made.append(vol)
        done = _sh("mount", vol.device, str(vol.mnt))
        if done.returncode != 0:
            pytest.skip(f"cannot mount a {fs} loop device here: {done.stderr.strip()}")
        return vol

    try:
        yield make
    finally:
        for vol in made:
            vol.close()


# --- watching the daemon read ------------------------------------------------------------


def alive(proc: subprocess.Popen[bytes]) -> bool:
    """Still running (without reaping it: finish() wants its rusage)."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


def has_open(proc: subprocess.Popen[bytes], path: Path) -> bool:
    fds = Path(f"/proc/{proc.pid}/fd")
    target = str(path)
    try:
        names = os.listdir(fds)
    except OSError:
        return False
    for name in names:
        with contextlib.suppress(OSError):
            if os.readlink(fds / name) in (target, target + " (deleted)"):
                return True
    return False


def wait_until_open(proc: subprocess.Popen[bytes], path: Path, timeout_s: float = 30) -> None:
    """Until the daemon holds `path` open (it is reading it)."""
    path = path.resolve()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if has_open(proc, path):
            return
        if not alive(proc):
            pytest.fail(f"dockd ended without opening {path}")
        time.sleep(0.001)
    pytest.fail(f"dockd did not open {path} within {timeout_s} s")


class Appender(threading.Thread):
    """Appends slowly to a file once the daemon has opened it, until stopped."""

    def __init__(self, proc: subprocess.Popen[bytes], path: Path) -> None:
        super().__init__(daemon=True)
        self.proc, self.path = proc, path
        self.halt = threading.Event()
        self.appended = 0
        self.while_open = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            wait_until_open(self.proc, self.path)
            while not self.halt.is_set():
                with self.path.open("ab") as f:
                    f.write(os.urandom(64 * 1024))
                self.appended += 64 * 1024
                if self.appended == 64 * 1024:
                    self.while_open = has_open(self.proc, self.path.resolve())
                self.halt.wait(0.02)
        except BaseException as exc:
            self.error = exc


# --- the tests ---------------------------------------------------------------------------


def plant_hostile_tree(camera: Path, world: World) -> dict[str, str]:
    """Symlinks out of the camera and special files beside two good recordings; returns
    label → the reason each hostile entry must be refused with."""
    dcim = camera / "DCIM"
    dcim.mkdir(parents=True, exist_ok=True)
    (dcim / "evil.mp4").symlink_to(world.canary)
    (dcim / "outdir.mp4").symlink_to(world.outside, target_is_directory=True)
    (dcim / "outdir").symlink_to(world.outside, target_is_directory=True)  # not entered
    (camera / "up").symlink_to("..", target_is_directory=True)
    os.mkfifo(dcim / "fifo.mp4")
    expect = {"DCIM/evil.mp4": "symbolic link", "DCIM/outdir.mp4": "symbolic link",
              "DCIM/fifo.mp4": "not a regular file"}
    try:
        os.mknod(dcim / "null.mp4", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        expect["DCIM/null.mp4"] = "not a regular file"
    except PermissionError:
        pass
    dfd = os.open(dcim, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX) as sock:  # bound through a short path
            sock.bind(f"/proc/self/fd/{dfd}/sock.mp4")
        expect["DCIM/sock.mp4"] = "not a regular file"
        raw = os.open(b"clip\xff.mp4", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=dfd)
        os.write(raw, b"not utf-8")
        os.close(raw)
        os.utime(b"clip\xff.mp4", (OLD, OLD), dir_fd=dfd)
        expect["DCIM/clip\\xff.mp4"] = "not UTF-8"
    finally:
        os.close(dfd)
    (dcim / "rtl\u202e4pm.mov").write_bytes(b"hidden extension")
    expect["DCIM/rtl\\u202e4pm.mov"] = "U+202E"
    return expect


@pytest.mark.parametrize("bus", ["volume", "folder"])
def test_symlinks_special_files_and_hostile_names_are_refused_alone(
        bus: str, make_volume: Callable[..., LoopVolume], world: World) -> None:
    if bus == "volume":
        vol = make_volume("ext4")
        camera, serial = vol.mnt, vol.label
        world.volume_rule(vol.label)
    else:
        export = world.root / "export"
        camera, serial = export / "BWC-0007", "BWC-0007"
        camera.mkdir(parents=True)
        (export / "LINKED").symlink_to(world.outside, target_is_directory=True)  # no camera
        world.folder_rule(export)
    sources = {"DCIM/100MEDIA/A0001.MP4": write_random(camera / "DCIM/100MEDIA/A0001.MP4",
                                                       3 * MIB),
               "DCIM/100MEDIA/B0002.MOV": write_random(camera / "DCIM/100MEDIA/B0002.MOV",
                                                       300_000)}
    (camera / "DCIM" / "notes.txt").write_text("not a recording")
    hostile = plant_hostile_tree(camera, world)
    before = tree(camera)

    result = world.run()

    assert result.returncode == EXIT_INCOMPLETE, result.stderr
    line = result.session(serial)
    assert (line["listed"], line["refused"]) == (2 + len(hostile), len(hostile))
    assert [e["serial"] for e in result.named("camera_docked")] == [serial]
    refused = {e["recording"]: e["error"] for e in result.named("recording_refused")}
    assert set(refused) == set(hostile)
    for label, why in hostile.items():
        assert why in refused[label], (label, refused[label])
    world.check(result, serial, camera, sources, stored=set(sources), kept=hostile)
    after = tree(camera)
    for name in sources:
        del before[name]
    assert after == before, "only the two recordings may leave the camera"
    assert line["deleted"] == 2


def test_file_growing_while_read_fails_and_stays_until_it_settles(
        make_volume: Callable[..., LoopVolume], world: World) -> None:
    vol = make_volume("ext4", size_mib=320)
    world.volume_rule(vol.label)
    grow = vol.mnt / "DCIM" / "GROW.MP4"
    sources = {"DCIM/A0001.MP4": write_random(vol.mnt / "DCIM" / "A0001.MP4", 2 * MIB),
               "DCIM/GROW.MP4": write_random(grow, 120 * MIB)}
    listed_size = 120 * MIB

    proc = world.start()
    appender = Appender(proc, grow)
    appender.start()
    result = world.finish(proc)
    appender.halt.set()
    appender.join(10)
    assert appender.error is None, appender.error
    assert appender.while_open, "the file grew only after dockd had read it: make it bigger"

    assert result.returncode == EXIT_INCOMPLETE
    first, *rest = result.transfers("DCIM/GROW.MP4")
    assert first["outcome"] == "protocol", first
    assert "changed while it was read" in first["error"], first
    assert all(t["outcome"] == "protocol" for t in rest), rest
    assert grow.stat().st_size == listed_size + appender.appended
    assert sha256_prefix(grow, listed_size) == sources["DCIM/GROW.MP4"]
    unchanged = {"DCIM/A0001.MP4": sources["DCIM/A0001.MP4"]}  # GROW grew: checked above
    world.check(result, vol.label, vol.mnt, unchanged, stored={"DCIM/A0001.MP4"},
                kept={"DCIM/GROW.MP4": "protocol"})

    # settled: the next dock takes the file as it is now, whole
    now = sha256_path(grow)
    again = world.run()
    assert again.returncode == 0, again.session(vol.label)
    assert again.session(vol.label)["stored"] == 1
    rows = world.recordings(vol.label)["DCIM/GROW.MP4"]
    assert [r["status"] for r in rows] == ["failed", "deleted_from_camera"], rows
    assert world.decrypt_sha256(rows[1]["store_path"]) == now
    assert not grow.exists()
    world.check_deletes_proven()
    world.check_canary()


@pytest.mark.parametrize("fault", ["replaced", "deleted"])
def test_file_replaced_or_deleted_mid_read_stores_only_the_listed_bytes(
        fault: str, make_volume: Callable[..., LoopVolume], world: World) -> None:
    vol = make_volume("ext4", size_mib=320)
    world.volume_rule(vol.label)
    big = vol.mnt / "DCIM" / "BIG.MP4"
    sources = {"DCIM/A0001.MP4": write_random(vol.mnt / "DCIM" / "A0001.MP4", MIB),
               "DCIM/BIG.MP4": write_random(big, 120 * MIB)}
    impostor = write_random(vol.mnt / "DCIM" / "impostor.bin", 120 * MIB)

    proc = world.start()
    wait_until_open(proc, big)
    if fault == "replaced":
        os.replace(vol.mnt / "DCIM" / "impostor.bin", big)
    else:
        big.unlink()
    mid_read = has_open(proc, big.resolve())
    result = world.finish(proc)
    assert mid_read, "dockd had read the file before the fault: make it bigger"

    assert result.returncode == 0, result.session(vol.label)  # the listed bytes: stored
    rows = world.recordings(vol.label)
    [row] = rows["DCIM/BIG.MP4"]
    assert row["status"] == "verified", row  # stored, but never deleted on the camera
    assert row["plaintext_sha256"] == sources["DCIM/BIG.MP4"] != impostor
    assert world.decrypt_sha256(row["store_path"]) == sources["DCIM/BIG.MP4"]
    assert [e["recording"] for e in result.named("camera_delete_failed")] == ["DCIM/BIG.MP4"]
    assert not [e for e in world.audit() if e["kind"] == "deleted_from_camera"
                and e["recording_id"] == row["id"]]
    if fault == "replaced":  # the newcomer stays where it is, untouched
        assert sha256_path(big) == impostor
    else:
        assert not big.exists()
    all_rows = world.dockctl("recordings")
    assert all(r["plaintext_sha256"] != impostor for r in all_rows)
    world.check(result, vol.label, vol.mnt, sources, stored=set(sources), kept={},
                deleted={"DCIM/A0001.MP4"})


def test_volume_unmounted_mid_transfer(make_volume: Callable[..., LoopVolume],
                                       world: World) -> None:
    vol = make_volume("ext4", size_mib=320)
    world.volume_rule(vol.label)
    names = {"DCIM/A0001.MP4": MIB, "DCIM/B0002.MP4": 150 * MIB, "DCIM/C0003.MP4": 2 * MIB}
    sources = {name: write_random(vol.mnt / name, size) for name, size in names.items()}

    proc = world.start()
    wait_until_open(proc, vol.mnt / "DCIM" / "B0002.MP4")
    vol.umount_lazy()
    result = world.finish(proc)  # ends by itself
    assert not is_mounted(vol.mnt)
    assert result.named("camera_undocked"), "the mount watcher saw the volume go"

    vol.mount()  # what is left on it, and why
    line = result.session(vol.label)
    rows = world.recordings(vol.label)
    failures = result.failures(vol.label)
    stored, kept = set(), {}
    for name in names:
        [row] = rows[name]
        if row["status"] in ("verified", "deleted_from_camera"):
            stored.add(name)
        else:
            kept[name] = failures[name]
            assert (vol.mnt / name).exists()
    world.check(result, vol.label, vol.mnt, sources, stored=stored, kept=kept,
                deleted={n for n in stored if rows[n][0]["status"] == "deleted_from_camera"})
    assert line["stored"] + len(line["failures"]) == len(names)


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def test_volume_yanked_mid_read_fails_with_eio(make_volume: Callable[..., LoopVolume],
                                               world: World) -> None:
    try:
        drop_caches()
    except OSError as exc:
        pytest.skip(f"cannot drop the page cache here: {exc}")
    vol = make_volume("ext4", size_mib=320)
    world.volume_rule(vol.label)
    big = vol.mnt / "DCIM" / "B0002.MP4"
    sources = {"DCIM/A0001.MP4": write_random(vol.mnt / "DCIM" / "A0001.MP4", MIB),
               "DCIM/B0002.MP4": write_random(big, 200 * MIB)}
    drop_caches()  # B's bytes must come from the device, not from memory

    proc = world.start()
    wait_until_open(proc, big)
    os.truncate(vol.image, MIB)  # the device behind the volume is gone but for 1 MiB
    done = _sh("losetup", "-c", vol.device)
    assert done.returncode == 0, done.stderr
    drop_caches()
    result = world.finish(proc)

    assert result.returncode == EXIT_INCOMPLETE
    attempts = result.transfers("DCIM/B0002.MP4")
    assert all(t["outcome"] == "refused" for t in attempts), attempts
    # later attempts may meet another errno of the broken filesystem (ext4 has said ENOMEM
    # opening an inode it could not read): the reason is the last attempt's
    assert "Input/output error" in attempts[0]["error"], attempts
    world.check(result, vol.label, None, sources, stored={"DCIM/A0001.MP4"},
                kept={"DCIM/B0002.MP4": "refused: "})


def test_full_volume_ingests_and_deleting_frees_it(make_volume: Callable[..., LoopVolume],
                                                   world: World) -> None:
    vol = make_volume("ext4", size_mib=32)
    world.volume_rule(vol.label)
    sources = {"DCIM/A0001.MP4": write_random(vol.mnt / "DCIM" / "A0001.MP4", 4 * MIB),
               "DCIM/B0002.MP4": write_random(vol.mnt / "DCIM" / "B0002.MP4", 3 * MIB)}
    filler = vol.mnt / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        block = os.urandom(64 * 1024)
        with pytest.raises(OSError) as full:
            while True:
                os.write(fd, block)
        assert full.value.errno == errno.ENOSPC
        os.fsync(fd)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as err:  # full: not even one more MiB
        (vol.mnt / "more.bin").write_bytes(os.urandom(1 * MIB))
    assert err.value.errno == errno.ENOSPC
    with contextlib.suppress(FileNotFoundError):
        (vol.mnt / "more.bin").unlink()
    filler_sha = sha256_path(filler)
    free = fs_free_bytes(vol.mnt)

    result = world.run()

    assert result.returncode == 0, result.session(vol.label)
    world.check(result, vol.label, vol.mnt, sources, stored=set(sources), kept={})
    assert fs_free_bytes(vol.mnt) - free >= 7 * MIB  # the deletes gave the space back
    assert sha256_path(filler) == filler_sha


def test_recording_sized_sparse_file_in_bounded_memory(world: World) -> None:
    export = world.root / "export"
    camera = export / "BWC-0100"
    path = camera / "LONG.MP4"
    camera.mkdir(parents=True)
    with path.open("wb") as f:  # holes, with data at the start, in the middle, at the end
        for at in (0, SPARSE_SIZE // 2, SPARSE_SIZE - MIB):
            f.seek(at)
            f.write(os.urandom(MIB))
    os.utime(path, (OLD, OLD))
    assert path.stat().st_blocks * 512 < 16 * MIB, "the file is not sparse"
    sources = {"LONG.MP4": sha256_path(path)}
    world.folder_rule(export)

    result = world.run()

    assert result.returncode == 0, result.session("BWC-0100")
    assert result.max_rss_mib < MAX_RSS_MIB, f"peak RSS {result.max_rss_mib:.0f} MiB"
    world.check(result, "BWC-0100", camera, sources, stored=set(sources), kept={})
    print(f"\n{SPARSE_SIZE >> 20} MiB sparse: {result.seconds:.1f} s, "
          f"peak RSS {result.max_rss_mib:.0f} MiB")


@pytest.fixture
def open_root() -> Iterator[Path]:
    """A test root every user may traverse (pytest's own tmp root is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="dockd-folder-e2e-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_permission_denied_on_one_file_as_an_unprivileged_daemon(open_root: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("switching to the user nobody needs root")
    if shutil.which("runuser") is None:
        pytest.skip("runuser is not installed (Debian: util-linux)")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("there is no user nobody")
    (open_root / "world").mkdir(mode=0o755)
    world = World(open_root / "world")
    try:
        permission_denied_on_one_file(world, nobody)
    finally:
        world.close()


def permission_denied_on_one_file(world: World, nobody: pwd.struct_passwd) -> None:
    export = world.root / "export"
    camera = export / "BWC-0200"
    sources = {name: write_random(camera / name, 2 * MIB)
               for name in ("A0001.MP4", "B0002.MP4", "C0003.MP4")}
    (camera / "B0002.MP4").chmod(0)
    world.folder_rule(export)
    world.env.config.chmod(0o644)
    (world.dropins / "folder.toml").chmod(0o644)
    for path in (world.root, world.dropins, export, camera):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)  # the store, catalog; deletes

    result = world.run(user="nobody")

    assert result.returncode == EXIT_INCOMPLETE, result.stderr
    assert "permission denied" in result.failures("BWC-0200")["B0002.MP4"]
    world.check(result, "BWC-0200", camera, sources, stored={"A0001.MP4", "C0003.MP4"},
                kept={"B0002.MP4": "permission denied"})


@pytest.mark.parametrize("fs", ["vfat", "ext4"])
def test_volume_with_hash_sidecars(fs: str, make_volume: Callable[..., LoopVolume],
                                   world: World) -> None:
    """vfat, what most cameras format their card with (where this kernel has it), and ext4:
    a vendor hash that matches, one that does not, one that is not a hash, none."""
    vol = make_volume(fs, size_mib=64)
    world.volume_rule(vol.label, hash_suffix=".sha256", subdir="DCIM")
    media = vol.mnt / "DCIM" / "100MEDIA"
    sources = {f"100MEDIA/{n}": write_random(media / n, size) for n, size in
               (("A0001.MP4", 3 * MIB), ("B0002.MP4", MIB), ("C0003.MP4", MIB),
                ("D0004.MP4", MIB))}
    (media / "A0001.MP4.sha256").write_text(sources["100MEDIA/A0001.MP4"] + "  A0001.MP4\n")
    (media / "B0002.MP4.sha256").write_text(hashlib.sha256(b"other").hexdigest() + "\n")
    (media / "D0004.MP4.sha256").write_text("this is not a hash\n")
    camera = vol.mnt / "DCIM"

    result = world.run()

    assert result.returncode == EXIT_INCOMPLETE
    world.check(result, vol.label, camera, sources,
                stored={"100MEDIA/A0001.MP4", "100MEDIA/C0003.MP4"},
                kept={"100MEDIA/B0002.MP4": "integrity",
                      "100MEDIA/D0004.MP4": "does not hold a SHA-256"})
    rows = world.recordings(vol.label)
    assert rows["100MEDIA/A0001.MP4"][0]["camera_sha256"] == sources["100MEDIA/A0001.MP4"]
    assert rows["100MEDIA/C0003.MP4"][0]["camera_sha256"] is None
    left = sorted(p.name for p in media.iterdir())
    assert left == ["B0002.MP4", "B0002.MP4.sha256", "D0004.MP4", "D0004.MP4.sha256"]


def test_export_folder_with_cameras_a_symlink_and_a_bad_name(world: World) -> None:
    export = world.root / "export"
    sources: dict[str, dict[str, str]] = {}
    for serial in ("BWC-0301", "BWC-0302"):
        sources[serial] = {"DCIM/A0001.MP4": write_random(
            export / serial / "DCIM" / "A0001.MP4", 2 * MIB)}
        (export / serial / "up.mp4").symlink_to(world.canary)
    fresh = export / "BWC-0301" / "FRESH.MP4"
    write_random(fresh, MIB, mtime=None)  # still being written: not taken yet
    write_random(export / "BAD NAME" / "X0001.MP4", MIB)  # fails the serial rule
    (export / "LINKED").symlink_to(world.outside, target_is_directory=True)
    world.folder_rule(export, settle_s=30)

    result = world.run()

    assert result.returncode == EXIT_INCOMPLETE
    assert sorted(e["serial"] for e in result.named("camera_docked")) == ["BWC-0301",
                                                                          "BWC-0302"]
    [broken] = result.named("dock_session_failed")
    assert "no usable camera serial" in broken["error"], broken
    assert broken["port"] == str(export / "BAD NAME")
    assert (export / "BAD NAME" / "X0001.MP4").exists()
    for serial, src in sources.items():
        world.check(result, serial, export / serial, src, stored=set(src),
                    kept={"up.mp4": "symbolic link"})
    assert fresh.exists()
    assert result.session("BWC-0301")["listed"] == 2  # the fresh file is not listed yet
