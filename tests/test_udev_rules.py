"""udev rules generated from match data; the committed file is the generator's output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from dockd.cli.udev_cmd import udev_rules_command
from dockd.matching import parse_rules
from dockd.udev_rules import generate_rules

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "config" / "70-dockd.rules"
LINE = re.compile(
    r'ACTION!="remove", SUBSYSTEM=="usb", ENV\{DEVTYPE\}=="usb_device", '
    r'ATTR\{idVendor\}=="([0-9a-f]{4})", (?:ATTR\{idProduct\}=="([0-9a-f]{4})", )?'
    r'MODE="0660", GROUP="dockd"')


def rule_lines(text: str) -> list[tuple[str, str | None]]:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    out = []
    for ln in lines:
        m = LINE.fullmatch(ln)
        assert m, f"unexpected rule line: {ln}"
        out.append((m[1], m[2]))
    return out


def test_committed_rules_are_the_generator_output():
    result = CliRunner().invoke(udev_rules_command, ["--packaged-only"])
    assert result.exit_code == 0, result.output
    assert COMMITTED.read_text() == result.output, (
        "config/70-dockd.rules is stale: run "
        "`dockctl udev-rules --packaged-only -o config/70-dockd.rules`")


def test_bundled_netco_camera_gets_group_access_and_nothing_else_does():
    assert rule_lines(COMMITTED.read_text()) == [("1209", "dc01")]


def test_rules_dedupe_widen_and_sort():
    rules = parse_rules("""
        [[match]]
        driver = "b"
        vendor_id = 0xABCD
        product_id = 0x0002
        [[match]]
        driver = "a"
        vendor_id = 0x0001
        product_id = 0x0010
        interface_class = 0xFF
        serial_pattern = "^X.*$"
        [[match]]
        driver = "c"
        vendor_id = 0x0001
        product_id = 0x0010
        [[match]]
        driver = "d"
        vendor_id = 0x0002
        [[match]]
        driver = "d"
        vendor_id = 0x0002
        product_id = 0x0005
        [[match]]
        driver = "e"
        vendor_id = 0x0003
        disabled = true
    """, "t.toml")
    text = generate_rules(rules)
    # a serial regex or interface class cannot be said in udev: widened to vendor:product;
    # a vendor-wide rule covers its vendor's products; a disabled rule grants nothing
    assert rule_lines(text) == [("0001", "0010"), ("0002", None), ("abcd", "0002")]
    assert "# a, c\n" in text
    assert generate_rules(reversed(rules)) == text  # stable whatever the input order


def test_no_rules_grants_nothing():
    text = generate_rules([])
    assert rule_lines(text) == []
    assert "nothing to grant" in text


@pytest.mark.parametrize("group", ["", "Dockd", "a b", 'x",MODE="0666'])
def test_bad_group_is_refused(group):
    with pytest.raises(ValueError, match="group"):
        generate_rules([], group=group)


def test_dropins_from_the_config_are_included(tmp_path):
    dropins = tmp_path / "drivers.d"
    dropins.mkdir()
    (dropins / "50-site.toml").write_text(
        '[[match]]\ndriver = "netco"\nvendor_id = 0x1209\nproduct_id = 0xDC02\n')
    config = tmp_path / "dockd.toml"
    config.write_text(f'[drivers]\ndropin_dir = "{dropins}"\n')
    out = tmp_path / "rules" / "70-dockd.rules"
    out.parent.mkdir()
    result = CliRunner().invoke(udev_rules_command, ["--config", str(config), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert rule_lines(out.read_text()) == [("1209", "dc01"), ("1209", "dc02")]
    assert out.stat().st_mode & 0o777 == 0o644


def test_a_rules_file_that_cannot_be_written_is_one_typed_line(tmp_path):
    out = tmp_path / "missing-dir" / "70-dockd.rules"
    result = CliRunner().invoke(udev_rules_command, ["--packaged-only", "-o", str(out)])
    assert result.exit_code == 4, result.output
    assert f"cannot write {out}: No such file or directory" in result.output
    assert "Traceback" not in result.output and not result.output.count("\n") > 1


def test_dropin_naming_an_unknown_driver_is_a_clear_error(tmp_path):
    dropins = tmp_path / "drivers.d"
    dropins.mkdir()
    (dropins / "50-site.toml").write_text('[[match]]\ndriver = "nope"\nvendor_id = 1\n')
    config = tmp_path / "dockd.toml"
    config.write_text(f'[drivers]\ndropin_dir = "{dropins}"\n')
    result = CliRunner().invoke(udev_rules_command, ["--config", str(config)])
    assert result.exit_code != 0
    assert "nope" in result.output


@pytest.mark.skipif(shutil.which("udevadm") is None, reason="udevadm is not installed")
def test_udevadm_accepts_the_rules(tmp_path):
    help_text = subprocess.run(["udevadm", "--help"], check=False, capture_output=True,
                               text=True).stdout
    if " verify " not in help_text:
        pytest.skip("this udevadm has no `verify` (systemd < 254)")
    done = subprocess.run(["udevadm", "verify", str(COMMITTED)], check=False,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


UDEV_RULES_D = Path("/etc/udev/rules.d")
#: udevadm test in a private mount namespace: our rules alone in /etc/udev/rules.d, an empty
#: /run (udev's database), a device with no node (lo): nothing outside the test changes
PRIVATE_UDEVADM_TEST = ('mount -t tmpfs tmpfs /run && mount --bind "$1" /etc/udev/rules.d && '
                        "exec udevadm test --action=add /sys/class/net/lo")


@pytest.mark.skipif(shutil.which("udevadm") is None or not UDEV_RULES_D.is_dir(),
                    reason="udev is not installed (scripts/setup --test installs it)")
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="a private mount namespace needs root and unshare")
def test_udevs_own_parser_reads_the_rules_without_complaint(tmp_path):
    """Where udevadm has no `verify` (Debian 12's systemd 252), `udevadm test` still loads
    every rules file with udev's own parser and names each line it cannot use. A broken file
    beside ours shows that the check can fail."""
    rules = tmp_path / "rules.d"
    rules.mkdir()
    shutil.copy(COMMITTED, rules / COMMITTED.name)
    (rules / "99-broken.rules").write_text('SUBSYSTEM=="usb", NO_SUCH_KEY="x"\nnot a rule\n')
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           PRIVATE_UDEVADM_TEST, "sh", str(rules)],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"no private mount namespace here: {done.stderr.strip()}")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert f"Reading rules file: /etc/udev/rules.d/{COMMITTED.name}" in out, out
    said = {}
    for line in out.splitlines():
        if line.startswith("/etc/udev/rules.d/"):
            where, _, what = line.partition(" ")
            said.setdefault(where.split(":")[0].rsplit("/", 1)[1], []).append(what)
    assert "Invalid key 'NO_SUCH_KEY'" in said["99-broken.rules"]
    # the dockd group is made by scripts/install (sysusers.d); on a test machine it may not
    # exist, which udev reports and the rule still parses
    assert [w for w in said.get(COMMITTED.name, [])
            if w != "Unknown group 'dockd', ignoring"] == []
