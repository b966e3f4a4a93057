"""Matching is data: packaged rules, drop-ins, most specific wins, errors name file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockd.errors import ConfigError
from dockd.events import UsbDeviceRef
from dockd.matching import Matcher, load_dropins, parse_rules

PACKAGED = """
[[match]]
driver = "netco"
vendor_id = 0x1209
product_id = 0xDC01
"""


def ref(vid: int = 0x1209, pid: int = 0xDC01, serial: str | None = "NC-100234",
        classes: tuple[int, ...] = (0xFF,)) -> UsbDeviceRef:
    return UsbDeviceRef(key="k", port_path="1-1.3", bus_number=1, address=5, vendor_id=vid,
                        product_id=pid, interface_classes=classes, serial=serial)


def test_slot_is_last_port_number() -> None:
    assert ref().slot == 3
    assert UsbDeviceRef("k", "2-4", 2, 1, 1, 1).slot == 4


def test_packaged_rule_matches_and_unknown_device_does_not() -> None:
    matcher = Matcher.build(parse_rules(PACKAGED, "pkg"), [], ["netco"])
    rule = matcher.match(ref())
    assert rule is not None
    assert rule.driver == "netco"
    assert matcher.match(ref(pid=0x0001)) is None


def test_most_specific_dropin_wins(tmp_path: Path) -> None:
    (tmp_path / "50-special.toml").write_text(
        '[[match]]\ndriver = "other"\nvendor_id = 0x1209\nproduct_id = 0xDC01\n'
        'serial_pattern = "NC-1.*"\n')
    matcher = Matcher.build(parse_rules(PACKAGED, "pkg"), load_dropins(tmp_path),
                            ["netco", "other"])
    assert matcher.match(ref(serial="NC-100234")).driver == "other"  # type: ignore[union-attr]
    assert matcher.match(ref(serial="NC-900000")).driver == "netco"  # type: ignore[union-attr]
    assert matcher.match(ref(serial=None)).driver == "netco"  # type: ignore[union-attr]


def test_dropin_can_disable_packaged_rule(tmp_path: Path) -> None:
    (tmp_path / "10-off.toml").write_text(PACKAGED + "disabled = true\n")
    matcher = Matcher.build(parse_rules(PACKAGED, "pkg"), load_dropins(tmp_path), ["netco"])
    assert matcher.match(ref()) is None


def test_dropin_for_unknown_driver_is_refused(tmp_path: Path) -> None:
    (tmp_path / "20-x.toml").write_text('[[match]]\ndriver = "ghost"\nvendor_id = 1\n')
    with pytest.raises(ConfigError, match=re.escape("20-x.toml")) as err:
        Matcher.build([], load_dropins(tmp_path), ["netco"])
    assert "ghost" in str(err.value)


@pytest.mark.parametrize(("text", "where"), [
    ('[[match]]\ndriver = "netco"\n', "match[0].vendor_id: is required"),
    ('[[match]]\ndriver = "netco"\nvendor_id = 0x10000\n', "match[0].vendor_id"),
    ('[[match]]\ndriver = "netco"\nvendor_id = "x"\n', "match[0].vendor_id"),
    ('[[match]]\ndriver = "NetCo!"\nvendor_id = 1\n', "match[0].driver"),
    ('[[match]]\ndriver = "netco"\nvendor_id = 1\ncolour = 2\n', "match[0].colour: unknown key"),
    ('[[match]]\ndriver = "netco"\nvendor_id = 1\nserial_pattern = "("\n',
     "serial_pattern: bad regex"),
    ('[[match]]\ndriver = "netco"\nvendor_id = 1\ninterface_class = 256\n', "interface_class"),
    ("[[match]\n", "not valid TOML"),
    ('oops = 1\n', "oops: unknown key"),
])  # fmt: skip
def test_bad_dropin_names_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    (tmp_path / "30-bad.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_dropins(tmp_path)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "30-bad.toml"))
    assert where in message
    assert err.value.exit_code == 2


def test_non_utf8_dropin_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "40-bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_dropins(tmp_path)


def test_missing_dropin_dir_is_fine(tmp_path: Path) -> None:
    assert load_dropins(tmp_path / "nope") == []
