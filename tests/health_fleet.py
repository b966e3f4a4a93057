"""Play a fleet scenario (scenarios/fleet-*.toml) through the real stack over simulated days,
into a real SQLite catalog and a real store, with host-storage readings the test chooses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dockd_sim.fleet import DayResult, FleetClock, run_fleet
from dockd_sim.scenario import load_scenario

from dockd.catalog import Catalog
from dockd.config import Config, IngestConfig, StorageConfig
from dockd.crypto.keys import generate_identity, parse_recipient
from dockd.health.capture import DiskUsage, DiskUsageFn

REPO = Path(__file__).resolve().parents[1]
GB = 10**9


@dataclass
class Fleet:
    root: Path
    config: Config
    config_path: Path
    catalog: Catalog
    clock: FleetClock
    days: list[DayResult]


def plenty_of_disk(day: int) -> DiskUsageFn:
    """1 TB disk losing 2 GB a day from 800 GB free: hundreds of days left."""
    free = 800 * GB - day * 2 * GB
    return lambda _path: DiskUsage(1000 * GB, 1000 * GB - free, free)


def filling_disk(day: int) -> DiskUsageFn:
    """1 TB disk losing 50 GB a day from 400 GB free: on day 5, 150 GB = 3 days left."""
    free = 400 * GB - day * 50 * GB
    return lambda _path: DiskUsage(1000 * GB, 1000 * GB - free, free)


def play(root: Path, scenario: str, *, disk: Callable[[int], DiskUsageFn] = plenty_of_disk
         ) -> Fleet:
    store = root / "evidence"
    store.mkdir()
    catalog_path = root / "catalog.sqlite"
    _secret, recipient = generate_identity()
    config_path = root / "dockd.toml"
    config_path.write_text(
        f'[storage]\npath = "{store}"\nmin_free_mib = 0\n'
        f'[catalog]\nurl = "sqlite:///{catalog_path}"\n'
        f'[encryption]\nrecipients = ["{recipient}"]\n'
        "[ingest]\nretry_delay_s = 0\ntransfer_timeout_s = 0.5\nmax_retries = 3\n")
    config = Config(storage=StorageConfig(path=store, min_free_mib=0),
                    ingest=IngestConfig(retry_delay_s=0, transfer_timeout_s=0.5, max_retries=3))
    clock = FleetClock()
    catalog = Catalog.open(f"sqlite:///{catalog_path}", clock=clock)
    days = run_fleet(load_scenario(REPO / "scenarios" / scenario), catalog, clock, config,
                     [parse_recipient(recipient)], root / "sim-state", disk_usage=disk)
    return Fleet(root, config, config_path, catalog, clock, days)
