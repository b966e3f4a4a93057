"""Glue for `--simulate SCENARIO`: the scenario's cameras, built by their drivers'
simulators, behind the in-process pyusb backend, docked on the scenario's timeline.

Vendor-neutral: a camera names its driver (or the only simulating driver is used).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockd.errors import ConfigError
from dockd.events import DeviceEvent
from dockd.registry import DriverRegistry
from dockd.sim.device import SimCamera
from dockd.sim.dock import SimulatedDock
from dockd.sim.pyusb_backend import SimBackend
from dockd.sim.scenario import load_scenario
from dockd.sim.spec import CameraSpec, Scenario
from dockd.sim.state import CameraState, default_state_dir, load_states


@dataclass
class Simulation:
    scenario: Scenario
    states: list[CameraState]
    backend: SimBackend
    dock: SimulatedDock

    def close(self) -> None:
        self.dock.stop()
        for state in self.states:
            state.save()


def camera_factory(registry: DriverRegistry, scenario: Scenario
                   ) -> Callable[[CameraSpec, CameraState], SimCamera]:
    sims = registry.simulators()
    for i, cam in enumerate(scenario.cameras):
        name = cam.driver
        if name is None and len(sims) != 1:
            choices = ", ".join(sims) or "none installed"
            raise ConfigError(scenario.path, f"camera[{i}].driver",
                              f"must name one of the simulating drivers: {choices}")
        if name is not None and name not in sims:
            raise ConfigError(scenario.path, f"camera[{i}].driver",
                              f"no installed driver {name!r} ships a simulator")

    def make(spec: CameraSpec, state: CameraState) -> SimCamera:
        driver: Any = sims[spec.driver] if spec.driver else next(iter(sims.values()))
        camera: SimCamera = driver.simulate(spec, state)
        return camera

    return make


def open_simulation(path: Path, registry: DriverRegistry, on_event: Callable[[DeviceEvent], None],
                    *, state_dir: Path | None = None, reset: bool = False,
                    all_at_once: bool = False) -> Simulation:
    """Load the scenario and prepare its dock; call `.dock.start()` to begin the timeline.

    `all_at_once` docks every camera at t=0 and ignores undocking (for `probe`)."""
    scenario = load_scenario(path)
    for i, cam in enumerate(scenario.cameras):
        if cam.day:
            raise ConfigError(scenario.path, f"camera[{i}].day",
                              "multi-day fleet scenarios are for the health tests; "
                              "`--simulate` plays one day (docs/simulator.md)")
    if all_at_once:
        from dataclasses import replace  # noqa: PLC0415

        scenario = replace(scenario, cameras=tuple(
            replace(c, dock_at_s=0.0, undock_at_s=None) for c in scenario.cameras))
    states = load_states(scenario, state_dir or default_state_dir(path), reset=reset)
    backend = SimBackend()
    dock = SimulatedDock(scenario, states, backend, camera_factory(registry, scenario), on_event)
    return Simulation(scenario, states, backend, dock)
