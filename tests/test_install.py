"""scripts/install and scripts/uninstall into a throwaway root, then the installed dockd runs.

One real install (a fresh venv from the distribution's Python, pip installing dockd, the
bundled drivers and their dependencies) is shared by the tests marked `installs`; the last
one uninstalls. Arguments, --help, --dry-run and refused interpreters need no install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

REPO = Path(__file__).resolve().parents[1]
PREFIX = "opt/dockd"
#: the distribution's Python, what the service's venv must be built from
DISTRO_PYTHON = "/usr/bin/python3"

T = TypeVar("T", bound=Callable[..., object])


def installs(test: T) -> T:
    """A test of the shared real install: slow, as root, with systemd's tools."""
    for mark in (pytest.mark.slow,
                 pytest.mark.skipif(os.geteuid() != 0,
                                    reason="scripts/install runs as root (chown in the root)"),
                 pytest.mark.skipif(shutil.which("systemd-sysusers") is None,
                                    reason="systemd-sysusers is not installed "
                                           "(apt-get install systemd)"),
                 pytest.mark.skipif(not Path(DISTRO_PYTHON).exists(),
                                    reason=f"{DISTRO_PYTHON} is not installed")):
        test = mark(test)
    return test


def script(name: str, *args: str, env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "scripts" / name), *args], check=False,
                          capture_output=True, text=True, timeout=timeout, env=env)


def run_script(name: str, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    done = script(name, *args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def decoy_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """PATH with a `python3` first that is not the distribution's (as pyenv's shim is on a
    developer's machine): the install must not pick it up."""
    bin_dir = tmp_path_factory.mktemp("decoy-bin")
    decoy = bin_dir / "python3"
    decoy.write_text("#!/bin/sh\necho 'the python3 first on PATH was used' >&2\nexit 97\n")
    decoy.chmod(0o755)
    return f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, decoy_path: str) -> Path:
    root = tmp_path_factory.mktemp("root")
    started = time.monotonic()
    run_script("install", "--root", str(root), env={**os.environ, "PATH": decoy_path})
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


def tree(root: Path) -> dict[str, tuple[int, int, float]]:
    """Every path under root with its mode, size and modification time."""
    out = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        out[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime)
    return out


@installs
def test_installs_every_piece_where_systemd_looks(root):
    expect = {
        "etc/systemd/system/dockd.service": REPO / "systemd/dockd.service",
        "etc/systemd/system/dockd-vault.service": REPO / "systemd/dockd-vault.service",
        "etc/udev/rules.d/70-dockd.rules": REPO / "config/70-dockd.rules",
        "etc/sysusers.d/dockd.conf": REPO / "systemd/dockd.sysusers",
        "etc/tmpfiles.d/dockd.conf": REPO / "systemd/dockd.tmpfiles",
        "etc/dockd/dockd.toml": REPO / "config/dockd.toml",
        f"{PREFIX}/share/doc/operations.md": REPO / "docs/operations.md",
        f"{PREFIX}/share/doc/vault.md": REPO / "docs/vault.md",
    }
    for rel, src in expect.items():
        path = root / rel
        assert path.read_bytes() == src.read_bytes(), rel
        assert path.stat().st_mode & 0o777 == 0o644, rel
    # the user and the state directories exist inside the root, not on this machine
    assert any(ln.startswith("dockd:") for ln in (root / "etc/passwd").read_text().splitlines())
    assert (root / "var/lib/dockd/evidence").stat().st_mode & 0o777 == 0o700
    assert (root / "etc/dockd/drivers.d").is_dir()


@installs
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


@installs
def test_installing_again_keeps_the_config_and_still_works(root, tmp_path):
    config = root / "etc/dockd/dockd.toml"
    config.write_text(config.read_text() + "\n# edited by the administrator\n")
    done = run_script("install", "--root", str(root))
    assert "keeping the existing" in done.stdout
    assert config.read_text().endswith("# edited by the administrator\n")
    assert probe(root, tmp_path) == []


@installs
def test_the_venv_is_built_from_the_distributions_python(root):
    """Not the python3 first on PATH (pyenv's shim under /root, hidden by ProtectHome=yes)."""
    cfg = dict(line.split(" = ", 1) for line in
               (root / PREFIX / "venv" / "pyvenv.cfg").read_text().splitlines() if " = " in line)
    assert cfg["home"] == "/usr/bin", cfg
    python = (root / PREFIX / "venv" / "bin" / "python").resolve()
    assert python.parent == Path("/usr/bin"), python
    assert python == Path(DISTRO_PYTHON).resolve()


def host_units() -> Path | None:
    for units in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (units / "sysinit.target").exists():
            return units
    return None


def analyze_in(root: Path, unit: str = "dockd.service") -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify --root` on the installed unit, the way docs/operations.md tells
    an administrator to check an image: the machine's own units are there too (copied from
    this host), so what dockd.service orders itself after resolves and is checked as well."""
    units = host_units()
    assert units is not None
    target = root / "usr" / "lib" / "systemd" / "system"
    if not target.exists():
        shutil.copytree(units, target, symlinks=True)
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", unit],
                          check=False, capture_output=True, text=True, timeout=60)


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or host_units() is None,
    reason="systemd-analyze or this host's unit files are not installed (apt-get install systemd)")


@installs
@needs_analyze
def test_the_installed_unit_passes_systemd_analyze_verify(root, tmp_path):
    done = analyze_in(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.strip() == "", done.stderr  # not even a warning
    # and the check is real: the same unit in a root without the venv fails, naming ExecStart
    bare = tmp_path / "bare"
    unit = bare / "etc" / "systemd" / "system" / "dockd.service"
    unit.parent.mkdir(parents=True)
    shutil.copy(root / "etc" / "systemd" / "system" / "dockd.service", unit)
    done = analyze_in(bare)
    assert done.returncode != 0
    assert f"/{PREFIX}/venv/bin/dockd is not executable" in done.stderr, done.stderr


@installs
@needs_analyze
def test_the_installed_vault_unit_passes_systemd_analyze_verify(root, tmp_path):
    """dockd-vault.service (docs/vault.md), checked the same way: in the installed root,
    with what it orders itself after (network-online.target, dockd.service) resolving."""
    done = analyze_in(root, "dockd-vault.service")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.strip() == "", done.stderr  # not even a warning
    bare = tmp_path / "bare"
    unit = bare / "etc" / "systemd" / "system" / "dockd-vault.service"
    unit.parent.mkdir(parents=True)
    shutil.copy(root / "etc" / "systemd" / "system" / "dockd-vault.service", unit)
    done = analyze_in(bare, "dockd-vault.service")
    assert done.returncode != 0
    assert f"/{PREFIX}/venv/bin/dockd is not executable" in done.stderr, done.stderr


@installs
def test_a_dry_run_on_an_installed_root_says_what_it_would_do_and_changes_nothing(root):
    before = tree(root)
    done = run_script("install", "--root", str(root), "--dry-run")
    assert tree(root) == before
    out = done.stdout
    assert f"would keep {root}/{PREFIX}/venv" in out, out
    assert f"would install {root}/etc/systemd/system/dockd.service (unchanged)" in out, out
    assert f"keeping the existing {root}/etc/dockd/dockd.toml" in out, out
    done = run_script("uninstall", "--root", str(root), "--dry-run")
    assert tree(root) == before
    assert f"would remove {root}/etc/systemd/system/dockd.service" in done.stdout
    assert f"would keep {root}/var/lib/dockd (--purge removes it)" in done.stdout


@installs
def test_uninstall_keeps_evidence_and_catalog_unless_purged(root):
    evidence = root / "var/lib/dockd/evidence/NC-1/2026/11/26/a.MP4.age"
    evidence.parent.mkdir(parents=True)
    evidence.write_bytes(b"age-encryption.org/v1\n")
    catalog = root / "var/lib/dockd/catalog.sqlite"
    catalog.write_bytes(b"SQLite format 3\0")
    run_script("uninstall", "--root", str(root))
    for gone in ("etc/systemd/system/dockd.service", "etc/systemd/system/dockd-vault.service",
                 "etc/udev/rules.d/70-dockd.rules", "etc/sysusers.d/dockd.conf",
                 "etc/tmpfiles.d/dockd.conf", PREFIX):
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


@pytest.mark.parametrize("name", ["install", "uninstall"])
def test_help_exits_0_with_the_usage_on_stdout(name):
    done = script(name, "--help", timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"scripts/{name} [--root DIR]" in done.stdout
    assert "--dry-run" in done.stdout
    assert done.stderr == ""


def test_a_dry_run_into_a_new_root_creates_nothing(tmp_path):
    root = tmp_path / "image"
    done = script("install", "--root", str(root), "--dry-run", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not root.exists()
    out = done.stdout
    assert f"would create {root}/{PREFIX}/venv from {DISTRO_PYTHON} (Python 3." in out, out
    for rel in ("etc/systemd/system/dockd.service", "etc/udev/rules.d/70-dockd.rules",
                "etc/sysusers.d/dockd.conf", "etc/tmpfiles.d/dockd.conf",
                f"{PREFIX}/share/doc/operations.md", "etc/dockd/dockd.toml"):
        assert f"would install {root}/{rel} (new)" in out, rel


def hidden_pythons(tmp_path: Path) -> list[tuple[str, str]]:
    """Interpreters the unit hides from dockd.service, and the setting that hides each."""
    link = tmp_path / "bin" / "python3"  # a symlink to the real one, but in /tmp
    link.parent.mkdir()
    link.symlink_to(DISTRO_PYTHON)
    return [("/root/.pyenv/shims/python3", "ProtectHome=yes"),
            ("/home/officer/.local/bin/python3", "ProtectHome=yes"),
            (str(link), "PrivateTmp=yes")]


@pytest.mark.parametrize("case", range(3))
def test_an_interpreter_the_unit_hides_is_refused_in_one_line(tmp_path, case):
    python, setting = hidden_pythons(tmp_path)[case]
    root = tmp_path / "root"
    root.mkdir()
    done = script("install", "--root", str(root), "--python", python, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"--python {python} is under" in done.stderr
    assert setting in done.stderr and "/usr/bin/python3" in done.stderr
    assert list(root.iterdir()) == []
