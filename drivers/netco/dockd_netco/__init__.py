"""dockd driver for NetCo-style body-worn cameras.

One package holds both ends of the NetCo protocol: the host session (`host`), the
simulated firmware (`device`) and the codec they share (`protocol`), so the simulator can
never drift from what the driver expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockd.sim.device import SimCamera
    from dockd.sim.spec import CameraSpec
    from dockd.sim.state import CameraState
    from dockd_netco.host import NetcoSession


class NetcoDriver:
    """Implements `dockd.driver.SimulatingDriver`."""

    name = "netco"
    vendor = "NetCo"

    def match_data(self) -> Traversable:
        return files("dockd_netco") / "match.toml"

    def open_session(self, device: Any, *, timeout_s: float,
                     options: Mapping[str, Any] | None = None) -> NetcoSession:
        from dockd_netco.host import NetcoSession  # noqa: PLC0415 - pyusb only when used

        return NetcoSession(device, timeout_s=timeout_s)

    def simulate(self, spec: CameraSpec, state: CameraState) -> SimCamera:
        from dockd_netco.device import NetcoCamera  # noqa: PLC0415 - simulator only when used

        return NetcoCamera(spec, state)


DRIVER = NetcoDriver()

__all__ = ["DRIVER", "NetcoDriver"]
