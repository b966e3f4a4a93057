"""Installed drivers, found through the `dockd.drivers` entry-point group.

A vendor ships a driver as its own package; installing it is all it takes for dockd to
know it. A driver that fails to load is reported and skipped, never fatal for the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

import structlog

from dockd.driver import Driver

ENTRY_POINT_GROUP = "dockd.drivers"

log = structlog.get_logger(__name__)


@dataclass
class DriverRegistry:
    drivers: dict[str, Driver] = field(default_factory=dict)

    @classmethod
    def discover(cls) -> DriverRegistry:
        registry = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                driver = ep.load()
                _check_driver(driver)
            except Exception as exc:  # a broken third-party driver must not stop the rest
                log.error("driver_load_failed", driver=ep.name,
                          error=f"{type(exc).__name__}: {exc}")
                continue
            registry.drivers[driver.name] = driver
        return registry

    def get(self, name: str) -> Driver | None:
        return self.drivers.get(name)



def _check_driver(driver: object) -> None:
    for attr in ("name", "vendor", "match_data", "open_session"):
        if not hasattr(driver, attr):
            raise TypeError(f"driver object lacks {attr!r}")
