"""A simulated camera's lasting state — its 'flash': which recordings are still on it, its
clock, which faults have already fired. It survives restarts of dockd, like a real camera.

State lives in a directory (default `<scenario file name>.sim-state/` beside it), one
JSON file per camera (serial + slot, so duplicate serials on two slots do not clash) plus a
shared cache of content hashes. When the camera's part of the scenario changes, its state
starts again from the scenario.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dockd.errors import ConfigError
from dockd.store import write_atomic
from dockd_sim.content import FileContent, GeneratedContent, RecordingContent
from dockd_sim.spec import BatterySpec, CameraSpec, RecordingSpec, Scenario

_VERSION = 1
_HASH_CACHE = "content-hashes.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
# one lock for every hash cache file in this process: cameras hash in parallel threads
_hash_lock = threading.Lock()


def default_state_dir(scenario_path: Path) -> Path:
    """`demo.toml` → `demo.toml.sim-state/` in the same directory."""
    return scenario_path.with_name(scenario_path.name + ".sim-state")


class SimRecording:
    """One recording on a simulated camera: what the scenario says, and its bytes."""

    def __init__(self, spec: RecordingSpec, state_dir: Path) -> None:
        self.spec = spec
        self.content: RecordingContent
        if spec.source is not None:
            self.content = FileContent(spec.source)
        else:
            self.content = GeneratedContent(spec.size or 0, spec.seed)
        self._state_dir = state_dir
        self._sha256: bytes | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> bytes:
        return self.spec.name

    @property
    def size(self) -> int:
        return self.content.size

    def _cache_key(self) -> str:
        if self.spec.source is not None:
            st = self.spec.source.stat()
            return f"file:{self.spec.source}:{st.st_size}:{st.st_mtime_ns}"
        return f"gen:{self.content.size}:{self.spec.seed}"

    @property
    def sha256(self) -> bytes:
        """The true SHA-256 of the content, hashed once and cached in the state directory."""
        with self._lock:
            if self._sha256 is None:
                self._sha256 = _cached_hash(self._state_dir, self._cache_key(), self.content)
            return self._sha256


def _cached_hash(state_dir: Path, key: str, content: RecordingContent) -> bytes:
    path = state_dir / _HASH_CACHE
    with _hash_lock:
        cache = _read_hash_cache(path)
        known = cache.get(key)
        if isinstance(known, str) and len(known) == 64:
            with contextlib.suppress(ValueError):
                return bytes.fromhex(known)
    digest = content.sha256()  # outside the lock: other cameras may hash meanwhile
    with _hash_lock:
        cache = _read_hash_cache(path)  # re-read: another thread may have added keys
        cache[key] = digest.hex()
        write_atomic(path, json.dumps(cache, indent=1, sort_keys=True).encode())
    return digest


def _read_hash_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # a cache only: a damaged one is rebuilt, never trusted
    return data if isinstance(data, dict) else {}


def _fingerprint(spec: CameraSpec) -> str:
    """Changes when what the camera's flash starts from changes (then its state restarts).
    The timeline (dock/undock times, link rate) and the battery are not part of it."""
    flash = (spec.serial, spec.slot, spec.clock_offset_s, spec.recordings, spec.faults)
    return hashlib.sha256(repr(flash).encode()).hexdigest()


def state_file_name(spec: CameraSpec) -> str:
    safe = _SAFE.sub("_", spec.serial)[:40]
    tag = hashlib.sha256(spec.serial.encode()).hexdigest()[:8]
    return f"slot{spec.slot:03d}-{safe}-{tag}.json"


class CameraState:
    """A camera's flash. Thread-safe; every change is saved atomically at once."""

    def __init__(self, spec: CameraSpec, state_dir: Path, *, present: list[int],
                 clock_offset_s: float, faults_left: list[int | None]) -> None:
        self.spec = spec
        self.battery: BatterySpec = spec.battery
        #: the camera's sense of elapsed time (its battery charging on the dock); a fleet
        #: played over simulated days runs it on the simulated calendar
        self.monotonic: Callable[[], float] = time.monotonic
        self.state_dir = state_dir
        self.path = state_dir / state_file_name(spec)
        self._lock = threading.RLock()
        self._all = [SimRecording(r, state_dir) for r in spec.recordings]
        self._present = present
        self._clock_offset_s = clock_offset_s
        self._faults_left = faults_left

    @classmethod
    def load(cls, spec: CameraSpec, state_dir: Path, *, reset: bool = False) -> CameraState:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / state_file_name(spec)
        saved = None if reset else _read_state(path, spec)
        if saved is None:
            state = cls(spec, state_dir, present=list(range(len(spec.recordings))),
                        clock_offset_s=spec.clock_offset_s,
                        faults_left=[f.times for f in spec.faults])
            state.save()
            return state
        return cls(spec, state_dir, **saved)

    def recordings(self) -> list[SimRecording]:
        """Recordings still on the camera, in the camera's order."""
        with self._lock:
            return [self._all[i] for i in self._present]

    def delete(self, name: bytes) -> bool:
        """Remove the first recording with this exact name; False when there is none."""
        with self._lock:
            for pos, i in enumerate(self._present):
                if self._all[i].spec.name == name:
                    del self._present[pos]
                    self.save()
                    return True
            return False

    def clock(self) -> datetime:
        with self._lock:
            offset = self._clock_offset_s
        return datetime.now(UTC) + timedelta(seconds=offset)

    def set_clock(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("set_clock needs a timezone-aware time")
        with self._lock:
            self._clock_offset_s = (when - datetime.now(UTC)).total_seconds()
            self.save()

    def take_fault(self, index: int) -> bool:
        """Consume one firing of spec.faults[index]; False once it is used up."""
        with self._lock:
            left = self._faults_left[index]
            if left is None:
                return True
            if left <= 0:
                return False
            self._faults_left[index] = left - 1
            self.save()
            return True

    def faults_left(self, index: int) -> int | None:
        with self._lock:
            return self._faults_left[index]

    def save(self) -> None:
        with self._lock:
            doc = {
                "version": _VERSION,
                "serial": self.spec.serial,
                "slot": self.spec.slot,
                "fingerprint": _fingerprint(self.spec),
                "present": self._present,
                "clock_offset_s": self._clock_offset_s,
                "faults_left": self._faults_left,
            }
            write_atomic(self.path, json.dumps(doc, indent=1).encode())


def _read_state(path: Path, spec: CameraSpec) -> dict[str, Any] | None:
    """The saved state, or None when there is none or the scenario changed since."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ConfigError(path, None, f"simulator state is unreadable ({e}); start again "
                          "with a reset") from e
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        raise ConfigError(path, "version", "unknown simulator state version; reset it")
    if doc.get("fingerprint") != _fingerprint(spec):
        return None
    present = doc.get("present")
    faults = doc.get("faults_left")
    offset = doc.get("clock_offset_s")
    n = len(spec.recordings)
    if (not isinstance(present, list)
            or not all(type(i) is int and 0 <= i < n for i in present)
            or len(set(present)) != len(present)):
        raise ConfigError(path, "present", "damaged simulator state; reset it")
    if (not isinstance(faults, list) or len(faults) != len(spec.faults)
            or not all(f is None or (type(f) is int and f >= 0) for f in faults)):
        raise ConfigError(path, "faults_left", "damaged simulator state; reset it")
    if isinstance(offset, bool) or not isinstance(offset, int | float):
        raise ConfigError(path, "clock_offset_s", "damaged simulator state; reset it")
    return {"present": present, "clock_offset_s": float(offset), "faults_left": faults}


def load_states(scenario: Scenario, state_dir: Path | None = None,
                reset: bool = False) -> list[CameraState]:
    """Every camera's state, in scenario order."""
    directory = state_dir if state_dir is not None else default_state_dir(scenario.path)
    return [CameraState.load(spec, directory, reset=reset) for spec in scenario.cameras]
