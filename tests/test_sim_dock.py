"""The simulated dock plays a scenario's timeline on the simulated bus and announces it."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import pytest
import usb.core
from dockd_sim.device import (
    ENDPOINT_IN,
    USB_CLASS_VENDOR_SPEC,
    SimStall,
    UsbDeviceDescription,
    UsbEndpoint,
    UsbInterface,
)
from dockd_sim.dock import SimulatedDock
from dockd_sim.pyusb_backend import SimBackend
from dockd_sim.spec import CameraSpec, DockSpec, Scenario
from dockd_sim.state import CameraState, load_states

from dockd.events import Action, DeviceEvent


class TinyCamera:
    """Just enough of a device model: leaves the bus when told to."""

    def __init__(self, spec: CameraSpec, state: CameraState) -> None:
        self.spec = spec
        self.description = UsbDeviceDescription(
            vendor_id=0x1234, product_id=0x0001, manufacturer="T", product="Tiny",
            serial=spec.serial,
            interfaces=(UsbInterface(0, USB_CLASS_VENDOR_SPEC, endpoints=(
                UsbEndpoint(0x01), UsbEndpoint(0x81 | ENDPOINT_IN))),),
        )
        self.leave = False
        self.closed = False

    def control_in(self, *args):
        raise SimStall

    def control_out(self, *args):
        raise SimStall

    def bulk_write(self, endpoint, data):
        return len(data)

    def bulk_read_into(self, endpoint, buffer):
        return 0

    def unplugged(self):
        return self.leave

    def close(self):
        self.closed = True


def make_dock(tmp_path: Path, cameras: tuple[CameraSpec, ...], **kw):
    scenario = Scenario(path=tmp_path / "s.toml", dock=DockSpec(hub_port_path="1-1"),
                        cameras=cameras)
    built: list[TinyCamera] = []

    def make_camera(spec, state):
        camera = TinyCamera(spec, state)
        built.append(camera)
        return camera

    backend = SimBackend()
    dock = SimulatedDock(scenario, load_states(scenario), backend, make_camera=make_camera, **kw)
    return dock, backend, built


def next_event(dock: SimulatedDock, timeout: float = 2.0) -> DeviceEvent:
    return dock.events.get(timeout=timeout)


def test_timeline_emits_events_in_order(tmp_path):
    cams = (
        CameraSpec(serial="A", slot=1, dock_at_s=0.0, undock_at_s=0.25),
        CameraSpec(serial="B", slot=3, dock_at_s=0.1),
        CameraSpec(serial="C", slot=5, dock_at_s=0.15),
    )
    dock, backend, built = make_dock(tmp_path, cams)
    assert dock.pending() and not dock.finished_plugging()
    dock.start()
    try:
        # cameras due at time 0 are on the bus when start() returns
        first = dock.events.get_nowait()
        assert (first.action, first.device.serial) == (Action.ADD, "A")
        assert dock.pending()
        seen = [(e.action, e.device.serial) for e in (next_event(dock) for _ in range(3))]
        assert seen == [(Action.ADD, "B"), (Action.ADD, "C"), (Action.REMOVE, "A")]
        assert dock.finished_plugging() and not dock.pending()
        assert built[0].closed and not built[1].closed
        assert sorted(r.serial for r in dock.docked()) == ["B", "C"]
    finally:
        dock.stop()
    assert all(c.closed for c in built)
    assert backend.devices() == []
    assert dock.events.empty()  # stop() pulls cameras without announcing it


def test_event_describes_the_device_and_slot(tmp_path):
    dock, backend, _ = make_dock(tmp_path, (CameraSpec(serial="NC-9", slot=3),))
    dock.start()
    try:
        ref = dock.events.get_nowait().device
        assert ref.key == "sim:1-1.3" and ref.port_path == "1-1.3" and ref.slot == 3
        assert (ref.bus_number, ref.vendor_id, ref.product_id) == (1, 0x1234, 0x0001)
        assert ref.interface_classes == (USB_CLASS_VENDOR_SPEC,)
        dev = usb.core.find(backend=backend, serial_number="NC-9")
        assert dev is not None
        assert (dev.address, dev.port_numbers) == (ref.address, (1, 3))
    finally:
        dock.stop()


def test_add_comes_after_the_bus_shows_it_remove_after_it_is_gone(tmp_path):
    seen: list[tuple[Action, bool]] = []
    holder: dict[str, SimBackend] = {}

    def on_event(event: DeviceEvent) -> None:
        found = usb.core.find(backend=holder["b"], serial_number=event.device.serial)
        seen.append((event.action, found is not None))

    cams = (CameraSpec(serial="A", slot=1, undock_at_s=0.05),)
    scenario = Scenario(path=tmp_path / "s.toml", dock=DockSpec(), cameras=cams)
    backend = SimBackend()
    holder["b"] = backend
    dock = SimulatedDock(scenario, load_states(scenario), backend,
                         make_camera=TinyCamera, on_event=on_event)
    dock.start()
    deadline = time.monotonic() + 2
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    dock.stop()
    assert seen == [(Action.ADD, True), (Action.REMOVE, False)]


def test_camera_leaving_by_itself_is_pulled_and_redocked(tmp_path):
    cams = (CameraSpec(serial="A", slot=2, redock_after_s=0.05),
            CameraSpec(serial="B", slot=4))
    dock, _, built = make_dock(tmp_path, cams)
    dock.start()
    try:
        assert {next_event(dock).device.serial for _ in range(2)} == {"A", "B"}
        built[0].leave = True  # an unplug fault fired
        removed = next_event(dock)
        assert (removed.action, removed.device.serial) == (Action.REMOVE, "A")
        assert built[0].closed
        assert dock.pending()  # A comes back
        again = next_event(dock)
        assert (again.action, again.device.serial) == (Action.ADD, "A")
        assert len(built) == 3 and not built[2].closed  # a fresh model, same state
        assert again.device.address != removed.device.address
        assert not dock.pending()
    finally:
        dock.stop()


def test_camera_leaving_without_redock_stays_out(tmp_path):
    dock, _, built = make_dock(tmp_path, (CameraSpec(serial="A", slot=1),))
    dock.start()
    try:
        next_event(dock)
        built[0].leave = True
        assert next_event(dock).action is Action.REMOVE
        with pytest.raises(queue.Empty):
            dock.events.get(timeout=0.15)
        assert not dock.pending() and len(built) == 1
    finally:
        dock.stop()


def test_states_must_match_the_scenario(tmp_path):
    cams = (CameraSpec(serial="A", slot=1), CameraSpec(serial="B", slot=2))
    scenario = Scenario(path=tmp_path / "s.toml", dock=DockSpec(), cameras=cams)
    states = load_states(scenario)
    with pytest.raises(ValueError, match="scenario order"):
        SimulatedDock(scenario, states[::-1], SimBackend(), make_camera=TinyCamera)
