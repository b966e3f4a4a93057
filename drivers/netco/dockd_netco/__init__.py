"""dockd driver for NetCo-style body-worn cameras: the host session (`host`) and the codec
(`protocol`). The simulated firmware (drivers/netco/sim, `dockd_netco_sim`) uses this same
codec, so the simulator can never drift from what the driver expects, but it is a
distribution of its own: a dock PC installs the driver, never the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockd_netco.host import NetcoSession


class NetcoDriver:
    """Implements `dockd.driver.Driver`; its simulator is drivers/netco/sim (dockd_netco_sim),
    a distribution of its own that a dock PC does not install."""

    name = "netco"
    vendor = "NetCo"

    def match_data(self) -> Traversable:
        return files("dockd_netco") / "match.toml"

    def open_session(self, device: Any, *, timeout_s: float,
                     options: Mapping[str, Any] | None = None) -> NetcoSession:
        from dockd_netco.host import NetcoSession  # noqa: PLC0415 - pyusb only when used

        return NetcoSession(device, timeout_s=timeout_s)


DRIVER = NetcoDriver()

__all__ = ["DRIVER", "NetcoDriver"]
