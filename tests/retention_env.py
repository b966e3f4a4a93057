"""A small evidence world for the retention and vault tests: a real SQLite catalog whose
recordings went through the real write order (lease → intent → stored → verified), each
with a real file in a store directory. The files are random bytes standing in for age
ciphertext: retention and the vault only ever hash and move ciphertext, never decrypt it.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dockd.catalog import Catalog, RecordingRow
from dockd.catalog.lease import LeaseOwner, live_token, new_token
from dockd.config import Config, RetentionConfig, StorageConfig
from dockd.model import CameraIdentity, RecordingInfo
from dockd.store import STORE_MARKER

HOST = "dock-a"
DAY = timedelta(days=1)


class Clock:
    """The catalog's clock, moved by hand (what `--at` is to the CLI)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def random_file(path: Path, size: int, seed: int) -> str:
    """Write `size` seeded random bytes; returns their SHA-256 (hex)."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left:
            chunk = rng.randbytes(min(1 << 20, left))
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


@dataclass
class Store:
    root: Path
    catalog: Catalog
    clock: Clock
    config: Config
    ids: dict[str, int] = field(default_factory=dict)
    cameras: set[str] = field(default_factory=set)

    def add(self, name: str, *, size: int = 3000, seed: int | None = None,
            started: datetime | None = None, serial: str = "NC-1",
            deleted_from_camera: bool = True) -> RecordingRow:
        """One recording listed now (the catalog's clock), stored, verified and (by default)
        deleted from its camera, with its file in the store."""
        seed = seed if seed is not None else len(self.ids) + 1
        plain = hashlib.sha256(f"{name}:{seed}".encode()).hexdigest()
        started = started or self.clock.now - timedelta(hours=2)
        info = RecordingInfo(name=name, size=size, started=started, duration_s=10.0,
                             prerecord_s=0.0, sha256=bytes.fromhex(plain))
        if serial not in self.cameras:
            self.catalog.upsert_camera(CameraIdentity(serial=serial, model="BC-1",
                                                      firmware="1.0", vendor="NetCo",
                                                      clock=self.clock.now))
            self.cameras.add(serial)
        rec = self.catalog.recording_for(serial, info)
        path = self.root / serial / f"{started:%Y/%m/%d}" / f"{name}.age"
        stored = random_file(path, size, seed)
        owner = LeaseOwner.here(self.catalog.host, new_token())
        with live_token(owner.token):
            self.catalog.take_lease(rec.id, owner)
            self.catalog.record_intent(rec.id, owner, path=str(path), stored_size=size,
                                       stored_sha256=stored, plaintext_sha256=plain)
            self.catalog.mark_stored(rec.id, owner, store_path=str(path),
                                     plaintext_sha256=plain, stored_sha256=stored,
                                     stored_size=size)
            proof = {"how": "written", "size": size, "stored_sha256": stored}
            rec = self.catalog.mark_verified(rec.id, owner, proof=proof)
            self.catalog.release_lease(rec.id, owner)
        if deleted_from_camera:
            rec = self.catalog.mark_deleted_from_camera(rec.id, proof=proof)
        self.ids[name] = rec.id
        return rec

    def rec(self, name: str) -> RecordingRow:
        return self.catalog.recording(self.ids[name])

    def path(self, name: str) -> Path:
        facts = self.catalog.custody(self.ids[name]).facts or {}
        return Path(str(facts["store_path"]))

    def events(self, kind: str) -> list[Any]:
        return [e for e in self.catalog.events() if e.kind == kind]

    def with_retention(self, **changes: Any) -> Config:
        self.config = replace(self.config, retention=replace(self.config.retention, **changes))
        return self.config


def make_store(tmp_path: Path, *, start: datetime | None = None, days: float = 14.0,
               categories: tuple[tuple[str, float | str], ...] = (),
               vault: Any = None, host: str = HOST,
               clock: Callable[[], datetime] | None = None) -> Store:
    root = tmp_path / "evidence"
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    # what the daemon writes into every store it serves (the sweep refuses a store without)
    (root / STORE_MARKER).write_text('{"mode": "simulated"}')
    the_clock = Clock(start or datetime.now(UTC).replace(microsecond=0))
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite'}", host=host,
                           clock=clock or the_clock)
    config = Config(storage=StorageConfig(path=root),
                    retention=RetentionConfig(default_days=days, categories=categories),
                    vault=vault)
    return Store(root, catalog, the_clock, config)
