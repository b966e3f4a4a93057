"""Shared helpers for the evidence-pipeline tests: a key, a config, a scenario, the real
`dockd run` process, and what the simulated camera, the catalog and the store hold afterwards.

The daemon always runs as a real subprocess with JSON logs: these tests are about what the
process promises (exit code, log lines, files, catalog), not about in-process objects.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockd_sim.scenario import load_scenario
from dockd_sim.state import CameraState, SimRecording, load_states

from dockd.catalog import Catalog
from dockd.catalog.rows import RecordingRow
from dockd.crypto.keys import generate_identity
from dockd.store import list_partials

DOCKD = Path(sys.executable).with_name("dockd")
AGE = Path("/usr/bin/age")
EXIT_INCOMPLETE = 6


@dataclass
class Env:
    """One test's daemon world: key, config, store, catalog, scenario, simulator state."""

    root: Path
    store: Path
    secret: str = field(repr=False)
    recipient: str
    key_file: Path
    config: Path
    catalog_path: Path
    scenario: Path
    sim_state: Path
    #: the catalog's URL when it is not the SQLite file (a PostgreSQL catalog hosts share)
    url: str = ""

    def catalog(self) -> Catalog:
        return Catalog.open(self.url or f"sqlite:///{self.catalog_path}")


def make_env(root: Path, *, store: Path | None = None, scenario_text: str = "",
             ingest: Mapping[str, Any] | None = None, min_free_mib: int = 0,
             catalog_url: str = "", host_id: str = "", identity: tuple[str, str] | None = None,
             extra: str = "") -> Env:
    """Write a key, a JSON-logging config and (optionally) the scenario under `root`.

    Several dock hosts on one catalog: `catalog_url` (a PostgreSQL URL), `host_id` (the
    `[host] id`), `identity` (secret, recipient: one evidence key for the fleet), `extra`
    (more TOML, e.g. a `[vault]` section)."""
    secret, recipient = identity or generate_identity()
    key_file = root / "key.txt"
    key_file.write_text(secret + "\n")
    key_file.chmod(0o600)
    store = store if store is not None else root / "evidence"
    catalog_path = root / "catalog.sqlite"
    settings: dict[str, Any] = {"retry_delay_s": 0, "transfer_timeout_s": 0.5,
                                "checkpoint_mib": 1, "max_retries": 3}
    settings.update(ingest or {})
    config = root / "dockd.toml"
    config.write_text(
        "[storage]\n"
        f"path = {json.dumps(str(store))}\n"
        f"min_free_mib = {min_free_mib}\n"
        "[catalog]\n"
        f"url = {json.dumps(catalog_url or f'sqlite:///{catalog_path}')}\n"
        + (f"[host]\nid = {json.dumps(host_id)}\n" if host_id else "") +
        "[encryption]\n"
        f"recipients = [{json.dumps(recipient)}]\n"
        "[ingest]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in settings.items()) +
        "[log]\nformat = \"json\"\nlevel = \"info\"\n" + extra
    )
    env = Env(root=root, store=store, secret=secret, recipient=recipient, key_file=key_file,
              config=config, catalog_path=catalog_path, scenario=root / "scenario.toml",
              sim_state=root / "sim-state", url=catalog_url)
    if scenario_text:
        env.scenario.write_text(scenario_text)
    return env


def plain_config(root: Path) -> Path:
    """The smallest config `dockd run` accepts, everything under `root` (console logs, no
    drop-ins from /etc): for tests about the process, not the evidence it keeps."""
    config = root / "dockd.toml"
    catalog_url = f"sqlite:///{root / 'catalog.sqlite'}"
    config.write_text(
        "[storage]\n"
        f"path = {json.dumps(str(root / 'evidence'))}\n"
        "min_free_mib = 1\n"
        "[catalog]\n"
        f"url = {json.dumps(catalog_url)}\n"
        "[encryption]\n"
        f"recipients = [{json.dumps(generate_identity()[1])}]\n"
        "[drivers]\n"
        f"dropin_dir = {json.dumps(str(root / 'drivers.d'))}\n"
    )
    return config


# --- scenarios ---------------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    raise TypeError(f"no TOML for {value!r}")


def scenario_toml(cameras: Sequence[Mapping[str, Any]], *, dock: str = "dock-test",
                  slots: int = 8) -> str:
    """A scenario file's text. A camera is a flat mapping plus optional lists of mappings
    under "recording" and "fault" (rendered as [[camera.recording]] / [[camera.fault]])."""
    lines = ["[dock]", f"name = {_toml(dock)}", f"slots = {slots}", 'driver = "netco"', ""]
    for cam in cameras:
        lines.append("[[camera]]")
        lines += [f"{k} = {_toml(v)}" for k, v in cam.items() if k not in ("recording", "fault")]
        for sub in ("recording", "fault"):
            for table in cam.get(sub, ()):
                lines.append(f"[[camera.{sub}]]")
                lines += [f"{k} = {_toml(v)}" for k, v in table.items()]
        lines.append("")
    return "\n".join(lines)


def recording(name: str, size: int, seed: int, minute: int = 0) -> dict[str, Any]:
    return {"name": name, "size": size, "seed": seed,
            "started": f"2026-11-25T08:{minute % 60:02d}:00Z"}


# --- running the daemon ------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]


def daemon_argv(env: Env, *, reset: bool) -> list[str]:
    argv = [str(DOCKD), "run", "--config", str(env.config), "--simulate", str(env.scenario),
            "--sim-state", str(env.sim_state), "--once"]
    return [*argv, "--sim-reset"] if reset else argv


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """Every JSON log line; a line that is not JSON fails the test (stdout is the log)."""
    events = []
    for line in stdout.splitlines():
        if line.strip():
            events.append(json.loads(line))
    return events


def run_daemon(env: Env, *, reset: bool = False, timeout_s: float = 60) -> Run:
    """`dockd run --once` to its end."""
    proc = subprocess.run(daemon_argv(env, reset=reset), capture_output=True, text=True,
                          timeout=timeout_s, cwd=env.root, check=False)
    return Run(proc.returncode, parse_events(proc.stdout), proc.stderr)


def start_daemon(env: Env, log_path: Path, *, reset: bool = False) -> subprocess.Popen[bytes]:
    """`dockd run --once` in the background, its JSON log going to `log_path`."""
    with log_path.open("wb") as out:
        return subprocess.Popen(daemon_argv(env, reset=reset), stdout=out,
                                stderr=subprocess.STDOUT, cwd=env.root)


def wait_for_event(proc: subprocess.Popen[bytes], log_path: Path, event: str,
                   timeout_s: float = 30) -> bool:
    """Wait until the daemon logged `event`; False if it exited first."""
    needle = f'"event": "{event}"'.encode()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if needle in log_path.read_bytes():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError(f"dockd did not log {event} within {timeout_s} s")


def kill_after(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """SIGKILL `proc` after `seconds` unless it ended first; True when it was killed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    return True


# --- what is where afterwards --------------------------------------------------------------


def camera_states(env: Env) -> list[CameraState]:
    """The simulated cameras' persisted flash, as the last daemon run left it."""
    return load_states(load_scenario(env.scenario), env.sim_state, reset=False)


def still_on_camera(env: Env) -> dict[str, set[str]]:
    """serial → names of recordings still on that camera."""
    out: dict[str, set[str]] = {}
    for state in camera_states(env):
        out.setdefault(state.spec.serial, set()).update(
            r.name.decode() for r in state.recordings())
    return out


def source_sha256(env: Env) -> dict[tuple[str, str], str]:
    """(serial, name) → SHA-256 of the recording's true bytes, read from the content itself
    (not from the simulator's hash cache, nor from what the camera claims)."""
    out: dict[tuple[str, str], str] = {}
    scenario = load_scenario(env.scenario)
    for spec in scenario.cameras:
        for rec in (SimRecording(r, env.sim_state) for r in spec.recordings):
            out[(spec.serial, rec.name.decode())] = rec.content.sha256().hex()
    return out


def recordings_by_key(env: Env) -> dict[tuple[str, str], RecordingRow]:
    with env.catalog() as catalog:
        return {(r.camera_serial, r.camera_name): r for r in catalog.recordings()}


def age_decrypt_sha256(env: Env, path: Path) -> str:
    """Decrypt with the real `age` binary; SHA-256 of the plaintext."""
    proc = subprocess.run([str(AGE), "-d", "-i", str(env.key_file), str(path)],
                          capture_output=True, check=True, timeout=60)
    return hashlib.sha256(proc.stdout).hexdigest()


def tolerant_events(path: Path) -> list[dict[str, Any]]:
    """A log's JSON lines; a killed process's last line may be cut off."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


def stored_files(env: Env) -> list[Path]:
    return sorted(p for p in env.store.rglob("*.age") if not p.name.startswith("."))


def leftovers(env: Env) -> list[Path]:
    return list_partials(env.store)


def assert_nothing_lost(env: Env, *, decrypt: bool = True,
                        expect: Iterable[tuple[str, str]] | None = None) -> None:
    """The core promise: every recording is on the camera, or stored once, verified, and
    decrypting (with `age`) to exactly its source bytes. `expect` limits the check."""
    sources = source_sha256(env)
    on_camera = still_on_camera(env)
    rows = recordings_by_key(env)
    keys = list(expect) if expect is not None else list(sources)
    for key in keys:
        serial, name = key
        if name in on_camera.get(serial, set()):
            continue
        row = rows.get(key)
        assert row is not None, f"{key} left the camera but the catalog never heard of it"
        assert row.status in ("verified", "deleted_from_camera"), (key, row.status)
        assert row.store_path is not None, key
        path = Path(row.store_path)
        assert path.is_file(), f"{key}: deleted from camera, but {path} is missing"
        assert row.camera_sha256 == sources[key], key
        if decrypt:
            assert age_decrypt_sha256(env, path) == sources[key], f"{key}: wrong bytes"
