"""A real evidence store for the dockctl tests: the real `dockd run --once --simulate`
process ingests a small scenario once per test module; each test gets a fresh copy of that
world at the same absolute path (the catalog stores absolute paths), so tests may tamper.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from dockd_sim.content import GeneratedContent

from dockd.catalog import AuditRecord, Catalog, RecordingRow
from dockd.cli.dockctl_cmd import main
from dockd.crypto.keys import generate_identity

DOCKD = Path(sys.executable).with_name("dockd")

#: (serial, name, size, seed): sizes straddle the 64 KiB age chunk (one, several, tiny)
RECORDINGS = [
    ("NC-1", "A_0001.MP4", 200_000, 1),
    ("NC-1", "B_0002.MP4", 65_536, 2),
    ("NC-2", "C_0003.MP4", 1_000, 3),
]


def netco_scenario(recordings: list[tuple[str, str, int, int]], *, dock: str = "dock-t",
                   serials: tuple[str, ...] = ("NC-1", "NC-2")) -> str:
    """A one-dock NetCo scenario: each serial in its slot, docked at 0 s, holding its
    (serial, name, size, seed) recordings, started an hour apart on 2026-11-25."""
    lines = ["[dock]", f'name = "{dock}"', f"slots = {len(serials)}", 'driver = "netco"', ""]
    for slot, serial in enumerate(serials, 1):
        lines += ["[[camera]]", f'serial = "{serial}"', f"slot = {slot}", 'firmware = "3.2.1"',
                  "dock_at_s = 0.0", ""]
        for n, (cam, name, size, seed) in enumerate(recordings):
            if cam == serial:
                lines += ["[[camera.recording]]", f'name = "{name}"', f"size = {size}",
                          f"seed = {seed}", f'started = "2026-11-25T1{n}:02:11Z"',
                          "duration_s = 10", ""]
    return "\n".join(lines)


@dataclass
class World:
    root: Path
    config: Path
    key: Path
    recipient: str
    store: Path
    catalog_path: Path

    def dockctl(self, *args: str) -> Result:
        """Run dockctl in-process with this world's config; output is stdout, errors stderr."""
        cmd, *rest = args
        return CliRunner().invoke(main, [cmd, "--config", str(self.config), *rest],
                                  prog_name="dockctl")

    def json(self, *args: str) -> Any:
        result = self.dockctl(*args, "--json")
        return json.loads(result.stdout)

    def catalog(self) -> Catalog:
        return Catalog.open(f"sqlite:///{self.catalog_path}")

    def recordings(self) -> dict[str, RecordingRow]:
        with self.catalog() as c:
            return {r.camera_name: r for r in c.recordings()}

    def events(self, kind: str) -> list[AuditRecord]:
        with self.catalog() as c:
            return [e for e in c.events() if e.kind == kind]

    def sql(self, statement: str, *params: object) -> None:
        """Tamper with the catalog behind dockd's back, as an attacker with file access could."""
        with sqlite3.connect(self.catalog_path) as db:
            db.execute(statement, params)


def source_bytes(name: str, recordings: list[tuple[str, str, int, int]] | None = None
                 ) -> bytes:
    """What the simulated camera held for `name` (small test sizes: fine to hold in memory)."""
    size, seed = next((s, seed) for _c, n, s, seed in (recordings or RECORDINGS) if n == name)
    buf = bytearray(size)
    assert GeneratedContent(size, seed).read_into(0, memoryview(buf)) == size
    return bytes(buf)


def ingest(root: Path) -> World:
    root.mkdir(parents=True, exist_ok=True)
    secret, recipient = generate_identity()
    key = root / "key.txt"
    key.write_text(secret + "\n")
    store, catalog_path = root / "evidence", root / "catalog.sqlite"
    config = root / "dockd.toml"
    config.write_text(
        f"[storage]\npath = {json.dumps(str(store))}\nmin_free_mib = 0\n"
        f"[catalog]\nurl = {json.dumps(f'sqlite:///{catalog_path}')}\n"
        f"[encryption]\nrecipients = [{json.dumps(recipient)}]\n"
        '[log]\nformat = "json"\n')
    scenario = root / "scenario.toml"
    scenario.write_text(netco_scenario(RECORDINGS))
    proc = subprocess.run(
        [str(DOCKD), "run", "--config", str(config), "--simulate", str(scenario),
         "--sim-state", str(root / "sim-state"), "--once"],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return World(root, config, key, recipient, store, catalog_path)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Path]]:
    world = ingest(tmp_path_factory.mktemp("dockctl") / "world")
    backup = world.root.with_name("pristine")
    shutil.copytree(world.root, backup)
    yield world, backup


@pytest.fixture
def world(pristine: tuple[World, Path]) -> World:
    """The ingested world, restored to just after the ingest."""
    w, backup = pristine
    shutil.rmtree(w.root)
    shutil.copytree(backup, w.root)
    return w
