"""scripts/install and scripts/uninstall into a throwaway root, then the installed dockd runs.

One real install (a fresh venv, pip installing dockd, the bundled drivers and their
dependencies) is shared by the tests below; the last one uninstalls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PREFIX = "opt/dockd"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="scripts/install runs as root (chown in the root)"),
    pytest.mark.skipif(shutil.which("systemd-sysusers") is None,
                       reason="systemd-sysusers is not installed (apt-get install systemd)"),
]

# the interpreter the venv is built from: the one running the tests, not its venv
PYTHON = getattr(sys, "_base_executable", sys.executable)


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(REPO / "scripts" / name), *args], check=False,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    started = time.monotonic()
    run_script("install", "--root", str(root), "--python", PYTHON)
    print(f"\nscripts/install took {time.monotonic() - started:.1f} s")
    return root


def installed(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed dockd (its own venv, its own #! line)."""
    dockd = root / PREFIX / "venv" / "bin" / "dockd"
    assert dockd.read_text().startswith(f"#!{root}/{PREFIX}/venv/bin/python")
    return subprocess.run([str(dockd), *args], check=False, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin"})


def probe(root: Path, tmp_path: Path) -> list[dict[str, object]]:
    """The installed dockd probes this machine's (real, empty) dock."""
    done = installed(root, "probe", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return list(json.loads(done.stdout)["cameras"])


def test_installs_every_piece_where_systemd_looks(root):
    expect = {
        "etc/systemd/system/dockd.service": REPO / "systemd/dockd.service",
        "etc/udev/rules.d/70-dockd.rules": REPO / "config/70-dockd.rules",
        "etc/sysusers.d/dockd.conf": REPO / "systemd/dockd.sysusers",
        "etc/tmpfiles.d/dockd.conf": REPO / "systemd/dockd.tmpfiles",
        "etc/dockd/dockd.toml": REPO / "config/dockd.toml",
        f"{PREFIX}/share/doc/operations.md": REPO / "docs/operations.md",
    }
    for rel, src in expect.items():
        path = root / rel
        assert path.read_bytes() == src.read_bytes(), rel
        assert path.stat().st_mode & 0o777 == 0o644, rel
    # the user and the state directories exist inside the root, not on this machine
    assert any(ln.startswith("dockd:") for ln in (root / "etc/passwd").read_text().splitlines())
    assert (root / "var/lib/dockd/evidence").stat().st_mode & 0o777 == 0o700
    assert (root / "etc/dockd/drivers.d").is_dir()


def test_a_production_install_holds_no_simulator_code(root, tmp_path):
    venv = root / PREFIX / "venv"
    site = next(venv.glob("lib/python3*/site-packages"))
    ours = sorted(p.name for p in site.iterdir() if p.name.startswith("dockd"))
    assert any(n.startswith("dockd_netco") for n in ours), ours  # the drivers are there
    assert not [n for n in ours if "sim" in n or "example" in n], ours
    simulator = ("simulate.py", "umockdev_bed.py", "pyusb_backend.py", "scenario.py",
                 "device.py", "fleet.py")
    assert not [p for p in site.rglob("*.py") if p.name in simulator
                and p.parent.name.startswith("dockd")]
    assert probe(root, tmp_path) == []  # it runs, and this machine docks no camera
    done = installed(root, "probe", "--simulate", str(REPO / "scenarios" / "demo.toml"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--simulate needs the simulator" in done.stderr


def test_installing_again_keeps_the_config_and_still_works(root, tmp_path):
    config = root / "etc/dockd/dockd.toml"
    config.write_text(config.read_text() + "\n# edited by the administrator\n")
    done = run_script("install", "--root", str(root), "--python", PYTHON)
    assert "keeping the existing" in done.stdout
    assert config.read_text().endswith("# edited by the administrator\n")
    assert probe(root, tmp_path) == []


def test_uninstall_keeps_evidence_and_catalog_unless_purged(root):
    evidence = root / "var/lib/dockd/evidence/NC-1/2026/11/26/a.MP4.age"
    evidence.parent.mkdir(parents=True)
    evidence.write_bytes(b"age-encryption.org/v1\n")
    catalog = root / "var/lib/dockd/catalog.sqlite"
    catalog.write_bytes(b"SQLite format 3\0")
    run_script("uninstall", "--root", str(root))
    for gone in ("etc/systemd/system/dockd.service", "etc/udev/rules.d/70-dockd.rules",
                 "etc/sysusers.d/dockd.conf", "etc/tmpfiles.d/dockd.conf", PREFIX):
        assert not (root / gone).exists(), gone
    assert evidence.read_bytes() == b"age-encryption.org/v1\n"
    assert catalog.exists()
    assert (root / "etc/dockd/dockd.toml").exists()
    run_script("uninstall", "--root", str(root))  # again: nothing left to do is no error
    run_script("uninstall", "--root", str(root), "--purge")
    assert not (root / "var/lib/dockd").exists()
    assert not (root / "etc/dockd").exists()


@pytest.mark.parametrize(("script", "args", "why"), [
    ("install", ["--prefix", "opt/dockd"], "absolute"),
    ("install", ["--prefix", "/opt/do ck"], "may hold only"),
    ("install", ["--bogus"], "unknown argument"),
    ("uninstall", ["--prefix", "/usr"], "refusing"),
    ("uninstall", ["--prefix", "/opt"], "refusing"),
])
def test_bad_arguments_are_refused_before_anything_happens(tmp_path, script, args, why):
    done = subprocess.run([str(REPO / "scripts" / script), "--root", str(tmp_path), *args],
                          check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert why in done.stderr
    assert list(tmp_path.iterdir()) == []
