#!/usr/bin/env python3
"""Fill a catalog with a year of a city's fleet, for measuring dockd at that scale.

    .venv/bin/python scripts/fleet_catalog.py --url sqlite:////var/tmp/fleet/catalog.sqlite
    .venv/bin/python scripts/fleet_catalog.py --url 'postgresql+psycopg://…' --cameras 20

A benchmark fixture, not a test. By default: 200 cameras (officers) docking once a working
day for 250 days, about 20 recordings a shift (1,000,000 in all), at 25 docks of 8 slots. Each
dock session has what the daemon writes (dockd/ingest.py, dockd/custody.py), row for row and
event for event: the session, a dock capture (battery, clock, storage), the camera's shift log
(a battery sample every 20 minutes, power and record start/stop events), and per recording
`listed → transfer_started → publish_intent → transfer_finished → stored → verified →
deleted_from_camera`, each event carrying the recording's custody facts. Realistic trouble:
~4 % of recordings lose a first attempt (camera gone, timeout, CRC) and are retried in the
same session; ~0.1 % fail for good after 4 attempts (an integrity mismatch); ~10 % of docks
set the camera's clock; a handful of cameras age badly (battery wear, clock drift, one dock
port that fails transfers more often) so health has something to find.

The rows are written in bulk (sqlite3 executemany / PostgreSQL COPY), not through the daemon,
but every event's hash is computed by dockd's own `event_hash` along one chain in time order,
so `dockctl audit` and `dockctl verify` see a valid chain. Stored files are not created: their
paths point under --store (absent unless you create it; --file-bytes N writes each stored
file there, N bytes, with its real SHA-256, for timing `dockctl verify`). Deterministic for
a given --seed.

The schema comes from dockd's migrations (Catalog.open), so the catalog is at HEAD.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import random
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dockd.catalog import Catalog, migrate  # noqa: E402
from dockd.catalog.audit import GENESIS, canonical_details, event_hash  # noqa: E402
from dockd.catalog.db import make_engine  # noqa: E402

SLOTS = 8
ERRORS = (  # (error_kind, message, share of first-attempt failures)
    ("gone", "camera left the bus while waiting for DATA", 0.5),
    ("timeout", "camera did not answer in time while waiting for DATA", 0.3),
    ("protocol", "data block at {off} fails its CRC", 0.2),
)


@dataclass
class CameraPlan:
    serial: str
    dock: int  # home dock index
    soh: float  # battery state of health, %
    cycles: int
    drift_s_per_day: float
    bad_port: bool


def sqlite_text(t: datetime) -> str:
    """How the catalog stores a UTCDateTime on SQLite (naive UTC, fixed width)."""
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def iso_z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # audit.format_at, for an aware UTC time


class Writer:
    """Rows out in bulk: SQLite executemany or PostgreSQL COPY, a table at a time."""

    TABLES: ClassVar[dict[str, tuple[str, ...]]] = {
        "dock_sessions": ("id", "camera_serial", "port_id", "docked_at", "undocked_at",
                          "outcome", "listed", "already_known", "stored", "deleted",
                          "failed", "refusal"),
        "recordings": ("id", "camera_serial", "camera_name", "size", "started", "duration_s",
                       "prerecord_s", "camera_sha256", "plaintext_sha256", "stored_sha256",
                       "store_path", "status", "failure_reason", "attempts", "created_at",
                       "updated_at", "stored_size", "lease_owner", "lease_until", "stored_on",
                       "category", "legal_hold", "hold_reason", "vault_key", "vault_version",
                       "vault_checksum", "vault_hold", "vault_lock_until", "local_deleted_at",
                       "vault_deleted_at"),
        "transfer_attempts": ("id", "recording_id", "session_id", "started_at", "finished_at",
                              "offset_from", "bytes", "outcome", "error_kind",
                              "error_message"),
        "audit_events": ("seq", "at", "kind", "actor", "host", "camera_serial",
                         "recording_id", "details", "prev_hash", "hash"),
        "dock_captures": ("id", "camera_serial", "session_id", "at", "clock_offset_s",
                          "clock_set", "soc_percent", "voltage_mv", "current_ma",
                          "temperature_c", "cycle_count", "design_capacity_mah",
                          "full_charge_capacity_mah", "charging", "storage_total_bytes",
                          "storage_free_bytes"),
        "shift_samples": ("id", "camera_serial", "session_id", "at", "camera_at",
                          "soc_percent", "voltage_mv", "current_ma", "temperature_c"),
        "shift_events": ("id", "camera_serial", "session_id", "at", "camera_at", "kind"),
    }

    def __init__(self, url: str) -> None:
        self.pg = url.startswith("postgresql")
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in self.TABLES}
        self.counts: dict[str, int] = dict.fromkeys(self.TABLES, 0)
        if self.pg:
            import psycopg  # noqa: PLC0415
            from sqlalchemy.engine import make_url  # noqa: PLC0415

            u = make_url(url)
            kw: dict[str, Any] = {k: v for k, v in u.query.items() if isinstance(v, str)}
            self.conn: Any = psycopg.connect(host=kw.pop("host", u.host), user=u.username,
                                             dbname=u.database, port=u.port, **kw)
        else:
            path = url.removeprefix("sqlite:///")
            self.conn = sqlite3.connect(path, isolation_level=None)
            # a throwaway bulk load: the file is checked and switched back to WAL at the end
            self.conn.execute("PRAGMA journal_mode = OFF")
            self.conn.execute("PRAGMA synchronous = OFF")
            self.conn.execute("PRAGMA cache_size = -1000000")
            self.conn.execute("PRAGMA foreign_keys = OFF")
            self.conn.execute("BEGIN")

    def t(self, value: datetime) -> Any:
        return value if self.pg else sqlite_text(value)

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows[table].append(row)

    def flush(self) -> None:
        # parents before children (foreign keys are checked on PostgreSQL)
        for table, cols in self.TABLES.items():
            rows = self.rows[table]
            if not rows:
                continue
            self.counts[table] += len(rows)
            if self.pg:
                with self.conn.cursor() as cur, cur.copy(
                        f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(cols))
                self.conn.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})",  # noqa: S608
                    rows)  # (our own table and column names)
            rows.clear()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        if self.pg:
            self.conn.execute(sql.replace("?", "%s"), params)
        else:
            self.conn.execute(sql, params)

    def commit(self) -> None:
        if self.pg:
            self.conn.commit()
        else:
            self.conn.execute("COMMIT")
            self.conn.execute("BEGIN")

    def close(self) -> None:
        self.flush()
        if self.pg:
            for table in ("docks", "ports", "dock_sessions", "recordings", "transfer_attempts",
                          "dock_captures", "shift_samples", "shift_events"):
                self.conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                                  f"(SELECT max(id) FROM {table}))")
            self.conn.commit()
            with self.conn.cursor() as cur:
                self.conn.autocommit = True
                cur.execute("VACUUM ANALYZE")
        else:
            self.conn.execute("COMMIT")
            self.conn.execute("ANALYZE")
            self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.close()


class Fleet:
    def __init__(self, args: argparse.Namespace, out: Writer) -> None:
        self.a = args
        self.out = out
        self.rng = random.Random(args.seed)
        self.host = args.host
        self.seq = 0
        self.prev = GENESIS
        self.pending: list[list[Any]] = []
        self.ids = dict.fromkeys(("session", "recording", "attempt", "capture", "sample",
                                  "shift_event"), 0)
        self.store = args.store
        docks = max(1, -(-args.cameras // SLOTS))
        self.docks = [f"dock-{i + 1:02d}" for i in range(docks)]
        self.cameras = [
            CameraPlan(serial=f"NC-{300000 + i}", dock=i // SLOTS,
                       soh=self.rng.uniform(62, 99) if self.rng.random() < 0.15
                       else self.rng.uniform(88, 100),
                       cycles=self.rng.randint(50, 600),
                       drift_s_per_day=self.rng.choice((0.1, 0.3, 0.5, 2.5)),
                       bad_port=False)
            for i in range(args.cameras)]
        #: one dock port per 40 that fails transfers often (a worn contact)
        self.bad_ports = {p for p in range(1, docks * SLOTS + 1) if p % 40 == 7}
        self.clock_offset: dict[str, float] = {c.serial: 0.0 for c in self.cameras}

    # --- the chain ---------------------------------------------------------------------

    def event(self, at: datetime, kind: str, serial: str | None, rec_id: int | None,
              details: dict[str, Any]) -> list[Any]:
        """An event of the session being generated; it gets its place in the chain when the
        day's sessions are merged in time order (docks overlap, so their events interleave
        as they do in the daemon, and `at` never goes backwards along the chain)."""
        ev = [at, kind, serial, rec_id, details, 0]
        self.pending.append(ev)
        return ev

    def chain(self, events: Iterator[list[Any]]) -> None:
        for ev in events:
            at, kind, serial, rec_id, details, _ = ev
            self.seq += 1
            ev[5] = self.seq
            intent = details.get("intent")
            if isinstance(intent, list):  # `stored` names its publish intent's seq
                details["intent"] = intent[5]
            text = canonical_details(details)
            digest = event_hash(seq=self.seq, at=at, kind=kind, actor="dockd",
                                host=self.host, camera_serial=serial, recording_id=rec_id,
                                details=text, prev_hash=self.prev)
            self.out.add("audit_events", (self.seq, self.out.t(at), kind, "dockd", self.host,
                                          serial, rec_id, text, self.prev, digest))
            self.prev = digest

    def write_file(self, path: str, rid: int) -> str:
        """`--file-bytes` of pseudo-random bytes at `path` (stands in for the age file:
        `dockctl verify` without a key re-hashes the stored bytes); returns their SHA-256."""
        block = hashlib.sha256(rid.to_bytes(8, "big")).digest() * (1 << 15)  # 1 MiB
        digest = hashlib.sha256()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as f:
            left = self.a.file_bytes
            while left:
                piece = block[:min(left, len(block))]
                f.write(piece)
                digest.update(piece)
                left -= len(piece)
        return digest.hexdigest()

    def next_id(self, name: str) -> int:
        self.ids[name] += 1
        return self.ids[name]

    # --- one dock session --------------------------------------------------------------

    def session(self, cam: CameraPlan, day: datetime, shift_start: datetime,
                docked_at: datetime) -> None:
        rng, out = self.rng, self.out
        sid = self.next_id("session")
        port = cam.dock * SLOTS + rng.randint(1, SLOTS)
        dock = self.docks[(port - 1) // SLOTS]
        slot = (port - 1) % SLOTS + 1
        t = docked_at
        self.event(t, "docked", cam.serial, None, {"dock": dock, "session": sid, "slot": slot})
        # the clock: drifts a little every day; set at the dock once it is off by > 30 s
        offset = self.clock_offset[cam.serial] + cam.drift_s_per_day * rng.choice((1, -1))
        clock_set = abs(offset) > 30
        t += timedelta(milliseconds=rng.randint(10, 40))
        if clock_set:
            self.event(t, "clock_set", cam.serial, None, {
                "camera_clock": (t + timedelta(seconds=offset)).isoformat(),
                "offset_s": round(offset, 1), "session": sid, "set_to": t.isoformat()})
            self.clock_offset[cam.serial] = 0.0
        else:
            self.clock_offset[cam.serial] = offset
        cam.cycles += 1
        soh = max(50.0, cam.soh - cam.cycles * 0.004)
        end_soc = max(3.0, 100 - rng.uniform(35, 80) * 100 / soh)
        out.add("dock_captures", (
            self.next_id("capture"), cam.serial, sid, out.t(docked_at), offset, clock_set,
            round(end_soc, 1), int(3500 + end_soc * 6.8), rng.randint(500, 900),
            round(rng.uniform(24, 36), 1), cam.cycles, 3000, int(3000 * soh / 100), "charging",
            256 << 30, rng.randint(40, 200) << 30))
        # the shift log: a battery sample every 20 min, power on/off, record start/stop
        shift_end = docked_at - timedelta(minutes=rng.randint(5, 30))
        span = (shift_end - shift_start).total_seconds()
        n_samples = max(2, int(span // 1200))
        for i in range(n_samples):
            at = shift_start + timedelta(seconds=i * span / (n_samples - 1))
            soc = 100 - (100 - end_soc) * i / (n_samples - 1)
            out.add("shift_samples", (
                self.next_id("sample"), cam.serial, sid, out.t(at),
                out.t(at + timedelta(seconds=offset)), round(soc, 1), int(3500 + soc * 6.8),
                -rng.randint(250, 450), round(rng.uniform(20, 34), 1)))
        n_recs = max(1, round(rng.gauss(self.a.per_day, 3)))
        starts = sorted(shift_start + timedelta(seconds=rng.uniform(600, span - 900))
                        for _ in range(n_recs))
        log_events = [(shift_start, "power_on"), (shift_end, "power_off")]
        recs = []
        for k, st in enumerate(starts):
            dur = rng.randint(20, 900)
            log_events += [(st, "record_start"), (st + timedelta(seconds=dur), "record_stop")]
            recs.append((st, dur, k))
        seen: set[tuple[datetime, str]] = set()
        for at, kind in sorted(log_events):
            if (at, kind) in seen:
                continue
            seen.add((at, kind))
            out.add("shift_events", (self.next_id("shift_event"), cam.serial, sid, out.t(at),
                                     out.t(at + timedelta(seconds=offset)), kind))
        # the recordings, one after another, as the custodians commit them
        stored = failed = 0
        t += timedelta(milliseconds=rng.randint(20, 80))
        for st, dur, k in recs:
            t, ok = self.recording(cam, sid, port, t, day, st, dur, k)
            stored += ok
            failed += not ok
        undocked = t + timedelta(milliseconds=rng.randint(50, 400))
        outcome = "complete" if not failed else "incomplete"
        self.event(undocked, "undocked", cam.serial, None, {
            "already_known": 0, "deleted": stored, "failed": failed, "listed": len(recs),
            "outcome": outcome, "session": sid, "stored": stored})
        out.add("dock_sessions", (sid, cam.serial, port, out.t(docked_at), out.t(undocked),
                                  outcome, len(recs), 0, stored, stored, failed, None))

    def recording(self, cam: CameraPlan, sid: int, port: int, t: datetime, day: datetime,
                  started: datetime, duration: int, k: int) -> tuple[datetime, bool]:
        rng, out = self.rng, self.out
        rid = self.next_id("recording")
        size = int(duration * rng.uniform(0.9, 1.1) * 625_000)  # ~5 Mbit/s video
        name = f"{started:%Y%m%d_%H%M%S}_{k + 1:04d}.MP4"
        cam_sha = rng.randbytes(32).hex()
        path = f"{self.store}/{cam.serial}/{started:%Y/%m/%d}/{name}.age"
        stored_size = size + (-(-size // 65536)) * 16 + 230
        stored_sha = rng.randbytes(32).hex()
        if self.a.file_bytes:  # a real file at the path, its hash the one the chain holds
            stored_size, stored_sha = self.a.file_bytes, self.write_file(path, rid)
        owner = f"{self.host}|{sid:08x}-fleet|1|{rid}|{rid % 65536:012x}"
        facts: dict[str, Any] = {
            "camera_name": name, "camera_serial": cam.serial, "camera_sha256": cam_sha,
            "category": None, "duration_s": float(duration), "legal_hold": False,
            "local_deleted_at": None, "plaintext_sha256": None, "prerecord_s": 30.0,
            "size": size, "started": iso_z(started), "status": "pending", "store_path": None,
            "stored_on": None, "stored_sha256": None, "stored_size": None,
            "vault_checksum": None, "vault_deleted_at": None, "vault_hold": False,
            "vault_key": None, "vault_lock_until": None, "vault_version": None}
        created = t
        self.event(t, "listed", cam.serial, rid, {"recording": dict(facts)})
        bad = port in self.bad_ports
        doomed = rng.random() < 0.001
        fails = 3 if doomed else (1 if rng.random() < (0.15 if bad else 0.035) else 0)
        attempts = 0
        ok = False
        for attempt in range(fails + 1):
            attempts += 1
            aid = self.next_id("attempt")
            t += timedelta(milliseconds=rng.randint(3, 12))
            began = t
            facts["status"] = "transferring"
            self.event(t, "transfer_started", cam.serial, rid, {
                "attempt": aid, "offset_from": 0, "owner": owner,
                "recording": dict(facts), "session": sid})
            # 40 MB/s-ish USB 2.0; a failed attempt dies part-way
            seconds = size / rng.uniform(35e6, 40e6)
            if attempt < fails:
                kind, msg, _ = rng.choices(ERRORS, weights=[e[2] for e in ERRORS])[0]
                if doomed:
                    kind = "integrity"
                    msg = (f"SHA-256 mismatch: camera says {cam_sha}, received "
                           f"{rng.randbytes(32).hex()}")
                got = size if doomed else int(size * rng.random()) // 65536 * 65536
                t += timedelta(seconds=seconds * got / max(size, 1) + 0.05)
                msg = msg.format(off=got)
                last = doomed and attempt == fails - 1
                facts["status"] = "failed"
                self.event(t, "transfer_failed", cam.serial, rid, {
                    "attempt": aid, "bytes": got, "error": msg, "error_kind": kind,
                    "recording": dict(facts)})
                out.add("transfer_attempts", (aid, rid, sid, out.t(began), out.t(t), 0, got,
                                              "failed", kind, msg))
                if last:
                    reason = f"after {attempts} attempt(s): {kind}: {msg}"
                    t += timedelta(milliseconds=2)
                    self.event(t, "failed", cam.serial, rid, {
                        "reason": reason, "recording": dict(facts)})
                    out.add("recordings", self.recording_row(
                        rid, facts, None, None, None, "failed", reason, attempts, created, t))
                    return t, False
                continue
            t += timedelta(seconds=seconds)
            intent = self.event(t, "publish_intent", cam.serial, rid, {
                "attempt": aid, "owner": owner, "path": path, "plaintext_sha256": cam_sha,
                "stored_sha256": stored_sha, "stored_size": stored_size})
            t += timedelta(milliseconds=rng.randint(2, 6))
            self.event(t, "transfer_finished", cam.serial, rid, {
                "attempt": aid, "bytes": size, "recording": dict(facts)})
            out.add("transfer_attempts", (aid, rid, sid, out.t(began), out.t(t), 0, size, "ok",
                                          None, None))
            facts.update(plaintext_sha256=cam_sha, status="stored", store_path=path,
                         stored_on=self.host, stored_sha256=stored_sha, stored_size=stored_size)
            t += timedelta(milliseconds=rng.randint(2, 6))
            self.event(t, "stored", cam.serial, rid, {"intent": intent,
                                                      "recording": dict(facts)})
            proof = {"how": "written", "size": stored_size, "stored_sha256": stored_sha}
            facts["status"] = "verified"
            t += timedelta(milliseconds=rng.randint(2, 6))
            self.event(t, "verified", cam.serial, rid, {"proof": proof,
                                                        "recording": dict(facts)})
            facts["status"] = "deleted_from_camera"
            t += timedelta(milliseconds=rng.randint(4, 15))
            self.event(t, "deleted_from_camera", cam.serial, rid, {
                "name": name, "proof": proof, "recording": dict(facts)})
            ok = True
        out.add("recordings", self.recording_row(
            rid, facts, cam_sha, stored_sha, stored_size, "deleted_from_camera", None,
            attempts, created, t, path=path))
        return t, ok

    def recording_row(self, rid: int, f: dict[str, Any], plain: str | None,
                      stored_sha: str | None, stored_size: int | None, status: str,
                      reason: str | None, attempts: int, created: datetime, updated: datetime,
                      path: str | None = None) -> tuple[Any, ...]:
        started = datetime.strptime(f["started"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        o = self.out
        return (rid, f["camera_serial"], f["camera_name"], f["size"], o.t(started),
                f["duration_s"], f["prerecord_s"], f["camera_sha256"], plain, stored_sha,
                path, status, reason, attempts, o.t(created), o.t(updated), stored_size, None,
                None, self.host if path else None, None, False, None, None, None, None, False,
                None, None, None)

    # --- the year ----------------------------------------------------------------------

    def run(self) -> Iterator[str]:
        out, rng = self.out, self.rng
        start = datetime(self.a.start_year, 1, 5, tzinfo=UTC)
        first = start - timedelta(days=1)
        for i, name in enumerate(self.docks, start=1):
            out.execute("INSERT INTO docks (id, name, host) VALUES (?, ?, ?)",
                        (i, name, self.host))
            for slot in range(1, SLOTS + 1):
                out.execute("INSERT INTO ports (id, dock_id, slot) VALUES (?, ?, ?)",
                            ((i - 1) * SLOTS + slot, i, slot))
        for cam in self.cameras:
            out.execute("INSERT INTO cameras (serial, vendor, model, firmware, first_seen, "
                        "last_seen, last_clock_offset_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (cam.serial, "NetCo", "BC-300", "3.2.1", out.t(first), out.t(first),
                         0.0))
        out.execute("INSERT INTO settings (key, value) VALUES ('mode', 'simulated')")
        day, worked = start, 0
        last_seen: dict[str, datetime] = {}
        while worked < self.a.days:
            if day.weekday() < 5:  # a working day; the fleet runs three shifts
                worked += 1
                plan = []
                for n, cam in enumerate(self.cameras):
                    shift = n % 3
                    begin = day + timedelta(hours=6 + 8 * shift, minutes=rng.randint(0, 40))
                    dock = begin + timedelta(hours=rng.uniform(9.0, 10.5))
                    plan.append((dock, begin, cam))
                sessions = []
                for dock_at, begin, cam in sorted(plan, key=lambda p: p[0]):
                    self.pending = []
                    self.session(cam, day, begin, dock_at)
                    sessions.append(self.pending)
                    last_seen[cam.serial] = dock_at
                self.chain(heapq.merge(*sessions, key=lambda ev: ev[0]))
                out.flush()
                if worked % 10 == 0:
                    out.commit()
                yield f"day {worked}/{self.a.days}: {self.ids['recording']:,} recordings, " \
                      f"{self.seq:,} events"
            day += timedelta(days=1)
        for cam in self.cameras:
            seen = last_seen.get(cam.serial, first)
            out.execute("UPDATE cameras SET last_seen = ?, last_clock_offset_s = ? "
                        "WHERE serial = ?", (out.t(seen), self.clock_offset[cam.serial],
                                             cam.serial))
        out.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (self.seq, self.prev))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True, help="catalog URL (must not exist yet / be empty)")
    ap.add_argument("--cameras", type=int, default=200)
    ap.add_argument("--days", type=int, default=250, help="working days")
    ap.add_argument("--per-day", type=float, default=20.0, help="recordings per shift")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--start-year", type=int, default=2025)
    ap.add_argument("--host", default=socket.gethostname(),
                    help="the dock host named in rows and events (default: this one, so "
                         "`dockctl verify` here treats the store as its own)")
    ap.add_argument("--store", default="/var/tmp/fleet-store",  # noqa: S108 (never created)
                    help="where the (absent) stored files would be")
    ap.add_argument("--file-bytes", type=int, default=0,
                    help="write every stored file under --store with this many bytes (and "
                         "its real SHA-256 in the chain), for timing `dockctl verify`")
    ap.add_argument("--revision", default="head",
                    help="build the schema only up to this migration (e.g. 0006_vault, to "
                         "time a later migration's upgrade of a fleet-year catalog)")
    args = ap.parse_args()
    began = time.monotonic()
    if args.revision == "head":
        Catalog.open(args.url).close()  # the schema, by dockd's own migrations
    else:
        engine = make_engine(args.url, create_dirs=True)
        migrate.upgrade(engine, args.revision)
        engine.dispose()
    out = Writer(args.url)
    fleet = Fleet(args, out)
    for line in fleet.run():
        print(f"{time.monotonic() - began:7.1f} s  {line}", flush=True)
    out.close()
    counts = ", ".join(f"{n:,} {t}" for t, n in out.counts.items())
    print(f"done in {time.monotonic() - began:.0f} s: {counts}; "
          f"audit head {fleet.seq}:{fleet.prev[:16]}…")
    if not args.url.startswith("postgresql"):
        path = args.url.removeprefix("sqlite:///")
        print(f"{path}: {Path(path).stat().st_size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
