"""The supervisor's promise: whatever a camera's worker raises is logged and reported; it
never vanishes into a thread pool while `dockd run --once` exits as if all went well."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from dockd.catalog import Catalog
from dockd.config import Config, StorageConfig
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
