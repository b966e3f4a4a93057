"""Glue for `--simulate SCENARIO`: the scenario's cameras, built by their drivers'
simulators, behind the in-process pyusb backend, docked on the scenario's timeline.

Vendor-neutral: a camera names its driver (or the only simulating driver is used).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import structlog

from dockd.errors import ConfigError
from dockd.events import DeviceEvent
from dockd_sim.device import SimCamera
from dockd_sim.dock import SimulatedDock
from dockd_sim.pyusb_backend import SimBackend
from dockd_sim.scenario import load_scenario
from dockd_sim.spec import CameraSpec, Scenario
from dockd_sim.state import CameraState, default_state_dir, load_states


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


SIMULATORS = "dockd.simulators"
SimulateFn = Callable[[CameraSpec, CameraState], SimCamera]
log = structlog.get_logger(__name__)


def simulators() -> dict[str, SimulateFn]:
    """Installed device models by driver name (the `dockd.simulators` entry points); one that
    fails to load is reported and skipped."""
    found: dict[str, SimulateFn] = {}
    for ep in entry_points(group=SIMULATORS):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken simulator must not stop the others
            log.error("simulator_load_failed", driver=ep.name,
                      error=f"{type(exc).__name__}: {exc}")
    return found


def camera_factory(scenario: Scenario) -> SimulateFn:
    sims = simulators()
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
        simulate = sims[spec.driver] if spec.driver else next(iter(sims.values()))
        return simulate(spec, state)

    return make


def open_simulation(path: Path, on_event: Callable[[DeviceEvent], None], *,
                    state_dir: Path | None = None, reset: bool = False,
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
    dock = SimulatedDock(scenario, states, backend, camera_factory(scenario), on_event)
    return Simulation(scenario, states, backend, dock)
