"""dockd driver for Example cameras (template: copy, rename, implement).

Keep the package small and split by purpose, as drivers/netco does:
`protocol.py` (one codec for both ends, hostile-input checks), `host.py` (the
CameraSession over pyusb), `device.py` (the simulated firmware).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from dockd.driver import CameraSession, RecordingStream
from dockd.errors import Unsupported
from dockd.model import BatterySnapshot, CameraIdentity, ListingEntry, ShiftLog


class ExampleSession:
    """Implements `dockd.driver.CameraSession` (see `dockd_netco.host.NetcoSession`).

    Every method raises only `dockd.errors.DeviceError` subclasses for device trouble, and
    treats every byte from the camera as hostile."""

    def __init__(self, device: Any, *, timeout_s: float) -> None:
        # claim the interface, check the camera speaks your protocol, map every pyusb
        # error to a dockd.errors.DeviceError subclass (see dockd_netco.host)
        raise Unsupported("Example driver template: the session is not written yet")

    def identity(self) -> CameraIdentity:
        raise Unsupported("not written yet")

    def battery(self) -> BatterySnapshot:
        raise Unsupported("not written yet")

    def shift_log(self) -> ShiftLog:
        raise Unsupported("not written yet")

    def recordings(self) -> list[ListingEntry]:
        """Every entry the camera lists, in its order, each judged on its own:

        - a `dockd.model.RecordingInfo` for a recording whose name and metadata pass your
          checks (UTF-8, no NUL, path separator, '.'/'..', control or format character;
          size and start time within your protocol's limits);
        - a `dockd.model.RefusedRecording` for an entry that fails them, or whose name is
          listed more than once (reading or deleting by name would be ambiguous):
          `label=escape_name(raw_name)`, `reason` one line a technician can read (without
          the name), the size, start time and hash as the camera sent them. The core never
          reads or deletes it; it stays on the camera while its siblings are ingested.

        Raise `dockd.errors.ProtocolError` for the whole listing only when it cannot be
        read at all: damaged framing, a name length beyond the limit, paging or totals that
        do not add up. Then no entry can be trusted.
        """
        raise Unsupported("not written yet")

    def open_recording(self, name: str, offset: int = 0) -> RecordingStream:
        raise Unsupported("not written yet")

    def delete_recording(self, name: str) -> None:
        raise Unsupported("not written yet")

    def set_clock(self, when: datetime) -> None:
        raise Unsupported("not written yet")

    def close(self) -> None:
        pass


class ExampleDriver:
    """Implements `dockd.driver.Driver` (add `simulate` for `SimulatingDriver`)."""

    name = "example"
    vendor = "Example"

    def match_data(self) -> Traversable:
        return files("dockd_example") / "match.toml"

    def open_session(self, device: Any, *, timeout_s: float,
                     options: Mapping[str, Any] | None = None) -> CameraSession:
        return ExampleSession(device, timeout_s=timeout_s)


DRIVER = ExampleDriver()

__all__ = ["DRIVER", "ExampleDriver", "ExampleSession"]
