"""Test rig: real CameraState on disk, NetcoCamera firmware, real pyusb core over SimBackend.

(Helpers live here, not in conftest.py, so their module name cannot clash with the root
tests/conftest.py.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import usb.core
from dockd_netco import DRIVER
from dockd_netco.host import NetcoSession
from dockd_netco_sim.device import NetcoCamera
from dockd_sim.content import GeneratedContent
from dockd_sim.pyusb_backend import SimBackend
from dockd_sim.spec import (
    BatterySpec,
    CameraSpec,
    FaultSpec,
    RecordingSpec,
    ShiftEventSpec,
    ShiftSampleSpec,
)
from dockd_sim.state import CameraState

STARTED = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
SERIAL = "NC-000123"


def rec(name: bytes, size: int, seed: int = 0, **kw: object) -> RecordingSpec:
    return RecordingSpec(name=name, started=STARTED, size=size, seed=seed or size,
                         duration_s=61.5, prerecord_s=30.0, **kw)  # type: ignore[arg-type]


def content(spec: RecordingSpec) -> bytes:
    assert spec.size is not None
    g = GeneratedContent(spec.size, spec.seed)
    buf = bytearray(spec.size)
    g.read_into(0, memoryview(buf))
    return bytes(buf)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


DEFAULT_RECORDINGS = (
    rec(b"20261125_083000_0001.mp4", 3 * 1024 * 1024 + 12345, seed=1),
    rec(b"20261125_091500_0002.mp4", 700_001, seed=2),
    rec(b"20261125_101500_0003.mp4", 0, seed=3),
)


def make_spec(recordings: tuple[RecordingSpec, ...] = DEFAULT_RECORDINGS,
              faults: tuple[FaultSpec, ...] = (), **kw: object) -> CameraSpec:
    return CameraSpec(
        serial=SERIAL, slot=3, firmware="3.2.1", recordings=recordings, faults=faults,
        battery=BatterySpec(soc_percent=81.5, temperature_c=-4.2, current_ma=-120,
                            charging="discharging"),
        shift_samples=tuple(ShiftSampleSpec(-3600 + 60 * i, 90 - i, 3900, -150, 25.5)
                            for i in range(7)),
        shift_events=(ShiftEventSpec(-3600, "power_on"), ShiftEventSpec(-1800, "record_start"),
                      ShiftEventSpec(-1700, "record_stop"), ShiftEventSpec(0, "docked")),
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class Rig:
    """One simulated camera docked on the in-process bus."""

    backend: SimBackend
    spec: CameraSpec
    state: CameraState
    camera: NetcoCamera
    address: int
    state_dir: Path

    def device(self) -> usb.core.Device:
        found = list(usb.core.find(find_all=True, backend=self.backend, idVendor=0x1209,
                                   idProduct=0xDC01))
        assert len(found) == 1
        return found[0]

    def session(self, timeout_s: float = 0.5) -> NetcoSession:
        return DRIVER.open_session(self.device(), timeout_s=timeout_s)

    def redock(self, **camera_kw: int) -> None:
        """Unplug (if still there) and dock the same camera again: state persists."""
        self.backend.unplug(self.address)
        self.state = CameraState.load(self.spec, self.state_dir)
        self.camera = NetcoCamera(self.spec, self.state, **camera_kw)
        self.address = self.backend.plug(self.camera, port_numbers=(1, self.spec.slot))


MakeRig = Callable[..., Rig]


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[MakeRig]:
    backend = SimBackend()
    sessions: list[Rig] = []

    def make(recordings: tuple[RecordingSpec, ...] = DEFAULT_RECORDINGS,
             faults: tuple[FaultSpec, ...] = (), **camera_kw: int) -> Rig:
        spec = make_spec(recordings, faults)
        state_dir = tmp_path / "sim-state"
        state = CameraState.load(spec, state_dir)
        camera = NetcoCamera(spec, state, **camera_kw)
        address = backend.plug(camera, port_numbers=(1, spec.slot))
        rig = Rig(backend, spec, state, camera, address, state_dir)
        sessions.append(rig)
        return rig

    yield make
    for device in backend.devices():
        backend.unplug(device.address)


@pytest.fixture
def rig(make_rig: MakeRig) -> Rig:
    return make_rig()


def read_all(stream: object, chunk: int = 1 << 20) -> bytes:
    buf = bytearray(chunk)
    view = memoryview(buf)
    out = bytearray()
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if n == 0:
            return bytes(out)
        out += view[:n]
