"""Security properties of the real `dockd run` process and its files.

- the store (finished files, partials, sidecars) and the catalog never hold a plaintext
  byte of a recording: known windows of every source are searched for in every file;
- files are created 0600 and directories 0700 (store, catalog with its WAL/SHM, key files);
- dockd refuses to start (exit 2, one line) with an identity where a recipient belongs, or
  with a config file or store that group or others may write;
- no output line ever holds key material, even when the config holds a key by mistake.
"""

from __future__ import annotations

import json
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from dockd_sim.state import SimRecording
from helpers_ingest import (
    AGE,
    DOCKD,
    Env,
    camera_states,
    make_env,
    recording,
    run_daemon,
    scenario_toml,
    stored_files,
)

from dockd.crypto import bech32
from dockd.crypto.keys import generate_identity

DOCKCTL = Path(sys.executable).with_name("dockctl")
WINDOW = 24  # bytes: a generated window this long occurs by chance with p ≈ 2^-192


def _scenario() -> str:
    """Two cameras; one is pulled out mid-recording and stays out, leaving a partial."""
    return scenario_toml([
        {"serial": "NC-SEC-1", "slot": 1, "recording": [
            recording("a.MP4", 3_000_000, 11), recording("b.MP4", 70_000, 12, 1),
            recording("c.MP4", 1, 13, 2)]},
        {"serial": "NC-SEC-2", "slot": 2, "recording": [recording("d.MP4", 3_500_000, 14)],
         "fault": [{"kind": "unplug", "recording": "d.MP4", "at_byte": 2_500_000}]},
    ])


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Env:
    root = tmp_path_factory.mktemp("security")
    env = make_env(root, scenario_text=_scenario())
    # the catalog in a directory dockd must create itself
    catalog_path = root / "db" / "catalog.sqlite"
    env.config.write_text(env.config.read_text().replace(
        str(env.catalog_path), str(catalog_path)))
    env.catalog_path = catalog_path
    run = run_daemon(env, reset=True)
    assert run.returncode == 6, run.stderr  # d.MP4 stays on its camera (unplugged)
    return env


def _windows(env: Env) -> list[bytes]:
    """Windows of every recording's true bytes: start, end and random places between."""
    rng = random.Random(6)
    out: list[bytes] = []
    for state in camera_states(env):
        for spec in state.spec.recordings:
            rec = SimRecording(spec, env.sim_state)
            data = bytearray(rec.size)
            rec.content.read_into(0, memoryview(data))
            if rec.size <= WINDOW:
                out.append(bytes(data))  # (a 1-byte recording cannot be searched for)
                continue
            starts = [0, rec.size - WINDOW, *(rng.randrange(rec.size - WINDOW)
                                            for _ in range(200))]
            out += [bytes(data[s : s + WINDOW]) for s in starts]
    return [w for w in out if len(w) >= 8]


def test_the_scenario_leaves_finished_files_and_a_partial(ingested: Env) -> None:
    files = [p for p in ingested.store.rglob("*") if p.is_file()]
    assert len(stored_files(ingested)) == 3
    assert any(p.name.startswith(".") for p in files), files  # the interrupted d.MP4


def test_no_plaintext_in_the_store_or_the_catalog(ingested: Env) -> None:
    windows = _windows(ingested)
    assert len(windows) > 600
    # the search works: the decrypted copies hold the windows of their recordings
    plain = b"".join(subprocess.run([str(AGE), "-d", "-i", str(ingested.key_file), str(p)],
                                    capture_output=True, check=True).stdout
                     for p in stored_files(ingested))
    assert sum(w in plain for w in windows) == 2 * 202  # a.MP4 and b.MP4 (c is 1 byte)
    files = [p for p in ingested.store.rglob("*") if p.is_file()]
    files += list(ingested.catalog_path.parent.glob("catalog.sqlite*"))
    for path in files:
        data = path.read_bytes()
        hits = [w.hex()[:16] for w in windows if w in data]
        assert not hits, f"{path} holds plaintext: {hits[:3]}"


def test_store_and_catalog_modes(ingested: Env) -> None:
    entries = [ingested.store, *ingested.store.rglob("*")]
    assert len(entries) > 8
    for path in entries:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert not path.is_symlink(), path
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {mode:04o}"
    catalog_files = list(ingested.catalog_path.parent.glob("catalog.sqlite*"))
    # (-wal/-shm exist while dockd runs; SQLite gives them the database file's mode)
    assert "catalog.sqlite" in {p.name for p in catalog_files}
    for path in catalog_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(ingested.catalog_path.parent.stat().st_mode) == 0o700


def test_keygen_writes_a_0600_key(tmp_path: Path) -> None:
    out = tmp_path / "id.txt"
    proc = subprocess.run([str(DOCKCTL), "keygen", "--out", str(out)], capture_output=True,
                          text=True, check=False, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    secret = next(line for line in out.read_text().splitlines() if line.startswith("AGE-"))
    assert secret not in proc.stdout + proc.stderr


# --- refusals -----------------------------------------------------------------------


def _refused(env: Env, secret: str | None = None) -> str:
    """Run dockd; it must exit 2 with one stderr line, touch no camera, leak no key."""
    run = subprocess.run([str(DOCKD), "run", "--config", str(env.config), "--simulate",
                          str(env.scenario), "--sim-state", str(env.sim_state), "--once",
                          "--sim-reset"], capture_output=True, text=True, timeout=30,
                         check=False, cwd=env.root)
    assert run.returncode == 2, (run.returncode, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert run.stdout.strip() == "" or all(json.loads(x) for x in run.stdout.splitlines())
    for secret_text in _key_material(secret or env.secret):
        assert secret_text not in run.stdout + run.stderr
    assert not env.store.exists() or not any(env.store.iterdir())
    return lines[0]


def _key_material(secret: str) -> list[str]:
    """The secret as written, in lower case, and its key bytes as hex."""
    _, data = bech32.decode(secret.lower())
    return [secret, secret.lower(), secret[len("AGE-SECRET-KEY-1"):], data.hex()]


def _env(tmp_path: Path) -> Env:
    return make_env(tmp_path, scenario_text=scenario_toml(
        [{"serial": "NC-SEC-9", "slot": 1, "recording": [recording("x.MP4", 1000, 1)]}]))


@pytest.mark.parametrize("mistake", ["upper", "lower", "second"])
def test_an_identity_as_recipient_is_refused_without_echoing_it(tmp_path: Path,
                                                                mistake: str) -> None:
    env = _env(tmp_path)
    text = {"upper": f'["{env.secret}"]', "lower": f'["{env.secret.lower()}"]',
            "second": f'["{env.recipient}", "{env.secret}"]'}[mistake]
    env.config.write_text(env.config.read_text().replace(f'["{env.recipient}"]', text))
    line = _refused(env)
    assert "private key" in line and "encryption.recipients[" in line, line
    assert [r.name for r in camera_states(env)[0].recordings()] == [b"x.MP4"]


@pytest.mark.parametrize("text", [
    # a key in a key dockd does not know, and a key where TOML expects a quoted string
    '[encryption]\nrecipients = ["{recipient}"]\nidentity = "{secret}"\n',
    '[encryption]\nrecipients = [{secret}]\n',
    '[storage]\npath = "{secret}"\n[encryption]\nrecipients = ["{secret}"]\n',
])
def test_no_message_holds_key_material(tmp_path: Path, text: str) -> None:
    env = _env(tmp_path)
    env.config.write_text(text.format(recipient=env.recipient, secret=env.secret))
    _refused(env)


def test_a_normal_run_logs_no_key_material(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run = subprocess.run([str(DOCKD), "run", "--config", str(env.config), "--simulate",
                          str(env.scenario), "--sim-state", str(env.sim_state), "--once",
                          "--sim-reset"], capture_output=True, text=True, timeout=60,
                         check=False, cwd=env.root)
    assert run.returncode == 0, run.stderr
    assert '"event": "dock_session"' in run.stdout
    for secret_text in _key_material(env.secret):
        assert secret_text not in run.stdout + run.stderr


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_config_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    env = _env(tmp_path)
    env.config.chmod(mode)
    line = _refused(env)
    assert "writable by group or others" in line and str(env.config) in line, line


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_store_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    env = _env(tmp_path)
    env.store.mkdir()
    env.store.chmod(mode)
    line = _refused(env)
    assert "storage.path" in line and "chmod go-w" in line, line


def test_a_private_config_and_store_are_accepted(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env.config.chmod(0o600)
    env.store.mkdir(mode=0o700)
    assert run_daemon(env, reset=True).returncode == 0


def test_the_throwaway_key_is_a_real_identity() -> None:
    # _key_material must decode what generate_identity makes (else the leak checks are void)
    secret, _ = generate_identity()
    material = _key_material(secret)
    assert len(bytes.fromhex(material[-1])) == 32
