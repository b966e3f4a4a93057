"""Simulated NetCo firmware (`device.NetcoCamera`), registered for dockd's simulator through
the `dockd.simulators` entry point. It speaks through the driver's own codec
(`dockd_netco.protocol`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockd_sim.device import SimCamera
    from dockd_sim.spec import CameraSpec
    from dockd_sim.state import CameraState


def simulate(spec: CameraSpec, state: CameraState) -> SimCamera:
    """A NetCo camera as the scenario describes it, with its lasting state."""
    from dockd_netco_sim.device import NetcoCamera  # noqa: PLC0415 - loaded when played

    return NetcoCamera(spec, state)


__all__ = ["simulate"]
