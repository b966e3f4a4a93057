"""`dockctl keygen`: a private identity file that the real age tool and dockd both accept."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from click.testing import CliRunner

from dockd.cli.dockctl_cmd import main
from dockd.crypto.keys import load_identities
from dockd.errors import StorageError


def _keygen(out: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["keygen", "--out", str(out)], prog_name="dockctl")
    return result.exit_code, result.stdout, result.stderr


def test_keygen_writes_0600_key_and_prints_recipient(tmp_path: Path) -> None:
    key = tmp_path / "key.txt"
    code, stdout, stderr = _keygen(key)
    assert code == 0, stderr
    recipient = stdout.strip()
    assert recipient.startswith("age1") and stdout.count("\n") == 1
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "off the dock PC" in stderr.replace("OFF", "off")
    [identity] = load_identities(key)
    assert str(identity.recipient()) == recipient
    # the real age tool agrees: what it encrypts to the recipient, the key opens
    sealed = subprocess.run(["age", "-r", recipient], input=b"evidence", capture_output=True,
                            check=True).stdout
    opened = subprocess.run(["age", "-d", "-i", str(key)], input=sealed, capture_output=True,
                            check=True).stdout
    assert opened == b"evidence"


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "key.txt"
    key.write_text("precious\n")
    code, stdout, stderr = _keygen(key)
    assert code == StorageError.exit_code
    assert stdout == ""
    assert stderr == f"dockctl: {key} already exists: keygen never overwrites a key\n"
    assert key.read_text() == "precious\n"


def test_keygen_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target"
    link = tmp_path / "link"
    link.symlink_to(target)
    code, _stdout, _stderr = _keygen(link)
    assert code == StorageError.exit_code
    assert not target.exists()
