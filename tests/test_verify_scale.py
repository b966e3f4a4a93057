"""`dockctl verify` at store scale: the walk for unknown files asks the catalog about the
files it finds, a batch at a time, instead of holding every path the catalog names, and the
check's memory does not grow with the catalog (issue 15)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pg_server import pg_fixture
from sqlalchemy import insert

from dockd import verify
from dockd.catalog import Catalog, audit, repo
from dockd.catalog.schema import Camera, Recording

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "scripts" / "fleet_catalog.py"
T0 = datetime(2026, 1, 5, tzinfo=UTC)

pg_server = pg_fixture("module")


def fleet(where: Path, *, cameras: int, days: int, file_bytes: int = 0) -> str:
    """A catalog as the fleet generator writes it (every event on one valid chain); with
    `file_bytes`, each stored file is written under where/store with its real hash."""
    where.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{where / 'catalog.sqlite'}"
    args = [sys.executable, str(FLEET), "--url", url, "--cameras", str(cameras),
            "--days", str(days), "--store", str(where / "store"), "--seed", "3"]
    if file_bytes:
        args += ["--file-bytes", str(file_bytes)]
    subprocess.run(args, check=True, capture_output=True, timeout=300)
    return url


@pytest.fixture
def stored(tmp_path: Path) -> tuple[str, Path]:
    return fleet(tmp_path / "fleet", cameras=2, days=3, file_bytes=64), tmp_path / "fleet" / "store"


class Spy:
    """Counts what the walk asks the catalog (`Catalog.named_paths`)."""

    def __init__(self, catalog: Catalog) -> None:
        self.asked: list[int] = []
        self._real = catalog.named_paths

    def __call__(self, paths: Sequence[str]) -> set[str]:
        self.asked.append(len(paths))
        return self._real(paths)


def test_unknown_files_are_found_among_many_rows_a_batch_at_a_time(
        stored: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, store = stored
    files = sorted(p for p in store.rglob("*") if p.is_file())
    assert len(files) > 100  # every recording's file, each named by its row
    some_dir = files[len(files) // 2].parent
    stray = some_dir / "planted.MP4.age"
    stray.write_bytes(b"nobody's")
    top = store / "loose.bin"
    top.write_bytes(b"nobody's either")
    odd = Path(os.fsdecode(bytes(some_dir) + b"/caf\xe9.age"))  # not UTF-8: in no row
    odd.write_bytes(b"x")
    (some_dir / ".in-flight.MP4.age.partial").write_bytes(b"x")  # a transfer in progress
    elsewhere = store.parent / "elsewhere"
    elsewhere.mkdir()
    (store / "linked").symlink_to(elsewhere, target_is_directory=True)
    # a row that no longer names its file: the file is still the one its chain names
    # (a row_differs finding, not an unknown file)
    moved = files[3]
    with Catalog.open(url) as cat:
        rec = next(r for r in cat.recordings() if r.store_path == str(moved))
        with cat.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE recordings SET store_path = ? WHERE id = ?",
                                 (str(moved) + ".renamed", rec.id))
        monkeypatch.setattr(verify, "WALK_BATCH", 7)
        spy = Spy(cat)
        monkeypatch.setattr(cat, "named_paths", spy)
        report = verify.verify_store(cat, store)

    assert sorted((f.problem, f.path) for f in report.findings) == sorted([
        ("unknown_file", str(stray)), ("unknown_file", str(top)), ("unknown_file", str(odd)),
        ("unknown_file", str(store / "linked")), ("row_differs", str(moved) + ".renamed")])
    assert report.checked == report.ok_count + 1 and report.checked >= len(files) - 1
    # every file found was asked about, never more than a batch at once
    assert max(spy.asked) <= 7 and sum(spy.asked) == len(files) + 2  # + stray, + loose
    # a partial check does not walk the store
    with Catalog.open(url) as cat:
        spy = Spy(cat)
        monkeypatch.setattr(cat, "named_paths", spy)
        partial = verify.verify_store(cat, store, selection=verify.Selection(percent=50))
    assert spy.asked == [] and "unknown_file" not in partial.by_problem()


def test_a_file_only_a_non_canonical_row_path_names_is_not_unknown(
        stored: tuple[str, Path]) -> None:
    """A stored path the walk does not spell as written (here `a/./b`) cannot be found by
    asking the catalog for the walked path: it is kept aside, and its file is still named."""
    url, store = stored
    with Catalog.open(url) as cat:
        rec = next(r for r in cat.recordings() if r.store_path is not None)
        assert rec.store_path is not None
        path = Path(rec.store_path)
        odd = f"{path.parent}/./{path.name}"
        with cat.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE recordings SET store_path = ? WHERE id = ?",
                                 (odd, rec.id))
        report = verify.verify_store(cat, store)
    assert [(f.problem, f.recording_id) for f in report.findings] == [
        ("row_differs", rec.id)]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog' / 'dockd.db'}"
    return str(request.getfixturevalue("pg_server").database_url())


def test_named_paths_answers_in_batches_on_every_backend(url: str) -> None:
    with Catalog.open(url) as cat:
        with cat.engine.begin() as conn:
            conn.execute(insert(Camera), [{
                "serial": "SN1", "vendor": "NetCo", "model": "BC-1", "firmware": "1",
                "first_seen": T0, "last_seen": T0}])
            conn.execute(insert(Recording), [{
                "camera_serial": "SN1", "camera_name": f"V{i}.MP4", "size": 1, "started": T0,
                "duration_s": 1.0, "prerecord_s": 0.0, "status": "stored",
                "store_path": f"/s/SN1/V{i}.MP4.age", "attempts": 1, "created_at": T0,
                "updated_at": T0} for i in range(1200)])
        asked = [f"/s/SN1/V{i}.MP4.age" for i in range(0, 2400, 2)]  # half of them named
        assert cat.named_paths(asked) == {f"/s/SN1/V{i}.MP4.age" for i in range(0, 1200, 2)}
        assert cat.named_paths([]) == set()


def _peak_kib(url: str, store: Path) -> tuple[int, int]:
    """(recordings checked, tracemalloc's peak KiB) of one verify_store."""
    with Catalog.open(url) as cat:
        gc.collect()
        tracemalloc.start()
        try:
            report = verify.verify_store(cat, store, jobs=1)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return report.checked, peak // 1024


@pytest.fixture(scope="module")
def two_sizes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    where = tmp_path_factory.mktemp("verify-memory")
    yield (fleet(where / "small", cameras=4, days=20), fleet(where / "big", cameras=16, days=20),
           where / "store")


def test_memory_does_not_grow_with_the_catalog(two_sizes: tuple[str, str, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Four times the recordings (1,621 and 6,411, each a `missing` finding: the files are
    absent) and their events, and the same peak of Python memory (tracemalloc). Before
    issue 15 the peak went from 1,612 to 4,083 KiB (~530 bytes a recording more): a digest
    of every named path kept for the walk for unknown files, and every stored path parsed
    by pathlib, which interns each part of it. After: 1,397 and 1,419 KiB. The bound, 40
    bytes a recording (~190 KiB here), is generous against noise and well under that."""
    small_url, big_url, store = two_sizes
    store.mkdir(exist_ok=True)  # an empty store: the walk runs, finds nothing
    # pages and caps far below both sizes, so both run at their steady state
    monkeypatch.setattr(verify, "KEEP", 100)
    monkeypatch.setattr(repo, "_EVENT_PAGE", 500)
    monkeypatch.setattr(audit, "_PAGE", 500)
    paged = Catalog.iter_custody
    monkeypatch.setattr(Catalog, "iter_custody", lambda self: paged(self, page=100))
    _peak_kib(small_url, store)  # once first: what a first run builds for good (statement
    # caches, imports) is not in either figure
    small_n, small_kib = _peak_kib(small_url, store)
    big_n, big_kib = _peak_kib(big_url, store)
    assert big_n > 3 * small_n > 3000
    assert (big_kib - small_kib) * 1024 < 40 * (big_n - small_n), (
        small_n, small_kib, big_n, big_kib)
