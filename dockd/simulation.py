"""The core's one door to the simulator: `dockd run --simulate` and `dockd probe --simulate`
load it through the `dockd.simulation` entry point, so the core never imports simulator code
and a dock PC (which does not install dockd-sim) says why in one line."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from dockd.errors import ConfigError

GROUP = "dockd.simulation"


def open_simulation(scenario: Path, on_event: Callable[..., None], **kwargs: Any) -> Any:
    """The simulator's `open_simulation(scenario, on_event, ...)`: a `Simulation` with
    `scenario`, `backend`, `dock` (start/stop/pending) and `close()`."""
    found = list(entry_points(group=GROUP, name="open"))
    if not found:
        raise ConfigError(scenario, None, "--simulate needs the simulator (the dockd-sim "
                          "package, installed for the demo and tests, never on a dock PC)")
    return found[0].load()(scenario, on_event, **kwargs)


def play_fleet(scenario: Path, config_path: Path | None, *, state_dir: Path | None = None
               ) -> Any:
    """A multi-day fleet scenario played on a simulated calendar ending today (the
    simulator's `play_file`: a `FleetPlay` with `days`, `first`, `last`), or None when the
    scenario is a single day, which the daemon itself plays."""
    found = list(entry_points(group=GROUP, name="fleet"))
    if not found:
        raise ConfigError(scenario, None, "--simulate needs the simulator (the dockd-sim "
                          "package, installed for the demo and tests, never on a dock PC)")
    return found[0].load()(scenario, config_path, state_dir=state_dir)
