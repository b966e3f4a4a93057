"""`[[dock.port_fault]]`: parsed and checked, seeded, and applied to large reads only."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import usb.core
from dockd_sim.port_fault import PortFault
from dockd_sim.scenario import load_scenario
from dockd_sim.spec import PORT_FAULT_MIN_BYTES, PortFaultKind, PortFaultSpec

from dockd.errors import ConfigError

CAMERA = '[[camera]]\nserial = "NC-1"\nslot = 1\n'


def _load(tmp_path: Path, dock: str) -> object:
    path = tmp_path / "s.toml"
    path.write_text(dock + "\n" + CAMERA)
    return load_scenario(path)


def test_port_faults_are_read_from_the_dock(tmp_path: Path) -> None:
    sc = _load(tmp_path, '[dock]\nslots = 4\n[[dock.port_fault]]\nslot = 3\nkind = "read_error"\n'
                         "rate = 0.3\n[[dock.port_fault]]\nslot = 4\nkind = \"corrupt\"\n"
                         "rate = 1\nseed = 9\n")
    assert sc.dock.port_faults == (  # type: ignore[attr-defined]
        PortFaultSpec(3, PortFaultKind.READ_ERROR, 0.3, 0),
        PortFaultSpec(4, PortFaultKind.CORRUPT, 1.0, 9))


@pytest.mark.parametrize(("body", "key", "problem"), [
    ('slot = 9\nkind = "read_error"\nrate = 0.1', "dock.port_fault[0].slot", "dock.slots"),
    ('slot = 1\nkind = "melt"\nrate = 0.1', "dock.port_fault[0].kind", "one of"),
    ('slot = 1\nkind = "corrupt"\nrate = 1.5', "dock.port_fault[0].rate", "0 to 1"),
    ('slot = 1\nrate = 0.5', "dock.port_fault[0].kind", "required"),
    ('slot = 1\nkind = "corrupt"', "dock.port_fault[0].rate", "required"),
    ('slot = 1\nkind = "corrupt"\nrate = 0.5\nrat = 1', "dock.port_fault[0].rat", "unknown"),
])
def test_bad_port_faults_name_the_key(tmp_path: Path, body: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "[dock]\nslots = 4\n[[dock.port_fault]]\n" + body + "\n")
    assert key in str(err.value) and problem in str(err.value)


def _reads(fault: PortFault, count: int, size: int) -> list[str]:
    out = []
    for _ in range(count):
        buf = memoryview(bytearray(size))
        try:
            fault.apply(buf, size)
        except usb.core.USBError as exc:
            assert exc.errno == errno.EIO
            out.append("error")
        else:
            out.append("flipped" if any(buf) else "clean")
    return out


def test_the_same_seed_gives_the_same_hits_at_about_the_rate() -> None:
    spec = PortFaultSpec(3, PortFaultKind.READ_ERROR, 0.3, seed=5)
    first = _reads(PortFault(spec), 2000, PORT_FAULT_MIN_BYTES)
    assert first == _reads(PortFault(spec), 2000, PORT_FAULT_MIN_BYTES)
    assert 0.25 < first.count("error") / 2000 < 0.35
    other = _reads(PortFault(PortFaultSpec(3, PortFaultKind.READ_ERROR, 0.3, seed=6)), 2000,
                   PORT_FAULT_MIN_BYTES)
    assert other != first


def test_short_reads_pass_untouched_and_corrupt_flips_one_bit() -> None:
    always = PortFault(PortFaultSpec(1, PortFaultKind.CORRUPT, 1.0))
    assert _reads(always, 50, PORT_FAULT_MIN_BYTES - 1) == ["clean"] * 50
    buf = memoryview(bytearray(PORT_FAULT_MIN_BYTES))
    always.apply(buf, len(buf))
    assert sum(bin(b).count("1") for b in buf) == 1
    assert always.hits == 1
