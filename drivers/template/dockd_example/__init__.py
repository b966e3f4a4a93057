"""dockd driver for Example cameras (template: copy, rename, implement).

Keep the package small and split by purpose, as drivers/netco does:
`protocol.py` (one codec for both ends, hostile-input checks), `host.py` (the
CameraSession over pyusb), `device.py` (the simulated firmware).
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from dockd.driver import CameraSession
from dockd.errors import Unsupported


class ExampleDriver:
    """Implements `dockd.driver.Driver` (add `simulate` for `SimulatingDriver`)."""

    name = "example"
    vendor = "Example"

    def match_data(self) -> Traversable:
        return files("dockd_example") / "match.toml"

    def open_session(self, device: Any, *, timeout_s: float) -> CameraSession:
        # claim the interface, check the camera speaks your protocol, map every pyusb
        # error to a dockd.errors.DeviceError subclass (see dockd_netco.host)
        raise Unsupported(f"{self.vendor} driver template: open_session is not written yet")


DRIVER = ExampleDriver()

__all__ = ["DRIVER", "ExampleDriver"]
