"""The supervisor's promise: whatever a camera's worker raises is logged and reported; it
never vanishes into a thread pool while `dockd run --once` exits as if all went well."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from dockd import supervisor as supervisor_module
from dockd.catalog import Catalog
from dockd.config import Config, StorageConfig
from dockd.errors import DeviceGone
from dockd.events import Action, DeviceEvent, UsbDeviceRef
from dockd.ingest import IngestContext
from dockd.supervisor import Supervisor


class CrashingOpener:
    """A driver whose open has a bug: raises what no driver contract names."""

    def match(self, _ref: UsbDeviceRef) -> object:
        return object()

    def open(self, _ref: UsbDeviceRef, *, timeout_s: float) -> object:
        raise RuntimeError("driver bug in open")


def test_an_unexpected_error_while_opening_is_logged_and_reported(tmp_path: Path) -> None:
    ctx = IngestContext(config=Config(storage=StorageConfig(path=tmp_path / "store")),
                        catalog=Catalog.open(f"sqlite:///{tmp_path / 'c.db'}"),
                        recipients=[], dock_name="dock-a")
    sup = Supervisor(ctx, CrashingOpener(), timeout_s=1.0, once=True)  # type: ignore[arg-type]
    ref = UsbDeviceRef(key="/sim/1-1.3", port_path="1-1.3", bus_number=1, address=5,
                       vendor_id=0x1209, product_id=0xDC01)
    sup.on_event(DeviceEvent(Action.ADD, ref))
    with capture_logs() as logs:
        state = sup.run()
    assert state.broken == {"slot 3 (1-1.3)": "internal error: RuntimeError: driver bug in open"}
    crashed = [e for e in logs if e["event"] == "dock_session_crashed"]
    assert len(crashed) == 1 and crashed[0]["error"] == "driver bug in open"


class GoneOpener:
    """A camera that leaves before its session opens; `opened` is set once it was tried."""

    def __init__(self) -> None:
        self.opened = threading.Event()

    def match(self, _ref: UsbDeviceRef) -> object:
        return object()

    def open(self, _ref: UsbDeviceRef, *, timeout_s: float) -> object:
        self.opened.set()
        raise DeviceGone("left the bus")


def test_a_camera_docked_while_health_is_judged_does_not_wait_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # at fleet-year scale a judgement takes seconds: it runs beside the main loop, so a camera
    # docked meanwhile is opened while the judgement is still running
    monkeypatch.setattr(supervisor_module, "HEALTH_EVERY_S", 0.0)  # due at once
    ctx = IngestContext(config=Config(storage=StorageConfig(path=tmp_path / "store")),
                        catalog=Catalog.open(f"sqlite:///{tmp_path / 'c.db'}"),
                        recipients=[], dock_name="dock-a")
    opener = GoneOpener()
    sup = Supervisor(ctx, opener, timeout_s=1.0, once=True)  # type: ignore[arg-type]
    ref = UsbDeviceRef(key="/sim/1-1.2", port_path="1-1.2", bus_number=1, address=4,
                       vendor_id=0x1209, product_id=0xDC01)
    seen: list[bool] = []

    def slow_health() -> None:
        if not seen:  # the first judgement: a camera docks while it runs
            sup.on_event(DeviceEvent(Action.ADD, ref))
            seen.append(opener.opened.wait(timeout=10))

    sup.health = slow_health
    sup.run()
    assert seen == [True]
