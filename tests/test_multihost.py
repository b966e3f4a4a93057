"""Several dock hosts, one PostgreSQL catalog (issue 12, part 3), against real processes.

Each "host" is a real `dockd run --once --simulate` process with its own `[host] id`, its own
store and simulated dock (both docks called `dock-test`, as two dock PCs cloned from one
image would be), on one throwaway PostgreSQL cluster (tests/pg_server.py) and, for the
camera that moves between hosts, one SeaweedFS vault (tests/vault_server.py). The promise
checked each time, fleet-wide: every recording is on a camera (with a reason), or catalogued
once and stored in the store of the host the catalog names, decrypting to its exact bytes;
one audit chain, gap-free and valid, that `dockctl verify` accepts from either host.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

from helpers_ingest import (
    DOCKD,
    Env,
    age_decrypt_sha256,
    camera_states,
    make_env,
    recording,
    run_daemon,
    scenario_toml,
    source_sha256,
    start_daemon,
    tolerant_events,
)
from pg_server import PgServer, pg_fixture
from sqlalchemy import select
from vault_server import WeedServer, weed_fixture

from dockd.catalog import Catalog
from dockd.catalog.audit import GENESIS
from dockd.catalog.live import live_status
from dockd.catalog.schema import Dock
from dockd.crypto.keys import generate_identity

MIB = 1 << 20
HOSTS = ("host-a", "host-b")
DOCKCTL = DOCKD.with_name("dockctl")
_RUNS = itertools.count()

pg = pg_fixture("module")
weed = weed_fixture("module")


def _fleet(tmp_path: Path, url: str, scenarios: dict[str, str], *,
           ingest: dict[str, Any] | None = None, extra: str = "",
           sim_state: Path | None = None) -> dict[str, Env]:
    """One Env per host: its own store, config and simulated dock; one catalog, one key."""
    identity = generate_identity()
    envs = {}
    for host, text in scenarios.items():
        root = tmp_path / host
        root.mkdir(exist_ok=True)
        env = make_env(root, scenario_text=text, catalog_url=url, host_id=host,
                       identity=identity, ingest=ingest, extra=extra)
        if sim_state is not None:  # one camera's flash, docked at one host, then the other
            env.sim_state = sim_state
        envs[host] = env
    return envs


def _dockctl(env: Env, *args: str) -> tuple[int, str]:
    proc = subprocess.run([str(DOCKCTL), args[0], "--config", str(env.config), *args[1:]],
                          capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _run_together(envs: dict[str, Env], *, reset: bool, watch: Any = None
                  ) -> dict[str, tuple[int, list[dict[str, Any]]]]:
    """Every host's `dockd run --once` at once; (exit code, log events) per host. `watch`
    is called every 50 ms while they run."""
    n = next(_RUNS)
    logs = {h: e.root / f"run{n}.json" for h, e in envs.items()}
    procs = {h: start_daemon(e, logs[h], reset=reset) for h, e in envs.items()}
    while watch is not None and any(p.poll() is None for p in procs.values()):
        watch()
        time.sleep(0.05)
    out = {}
    for host, proc in procs.items():
        proc.wait(timeout=120)
        text = logs[host].read_text()
        assert "Traceback" not in text, text[-3000:]
        out[host] = (proc.returncode, tolerant_events(logs[host]))
    return out


def _chain_is_one_and_whole(catalog: Catalog) -> set[str]:
    """1, 2, 3, ... without a gap, each event linked to the one before (no fork can give
    that), the head on the last; returns the hosts that wrote events."""
    events = catalog.events()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    prev = GENESIS
    for e in events:
        assert e.prev_hash == prev, f"event {e.seq} does not link to {e.seq - 1}"
        prev = e.hash
    assert catalog.head() == (len(events), prev)
    assert catalog.verify_chain() == []
    return {e.host for e in events}


def _nothing_lost_fleet(envs: dict[str, Env]) -> dict[tuple[str, str, str], Any]:
    """Every source recording is on some camera, or catalogued once, verified, stored on the
    host the catalog names (in that host's store), decrypting to exactly its bytes."""
    sources: dict[tuple[str, str, str], str] = {}
    held: set[tuple[str, str, str]] = set()
    for env in envs.values():
        for (serial, name), sha in source_sha256(env).items():
            sources[(serial, name, sha)] = sha
        for state in camera_states(env):
            for rec in state.recordings():
                held.add((state.spec.serial, rec.name.decode(), rec.sha256.hex()))
    any_env = next(iter(envs.values()))
    with any_env.catalog() as catalog:
        rows = catalog.recordings()
    by_ident: dict[tuple[str, str, str], list[Any]] = {}
    for row in rows:
        by_ident.setdefault((row.camera_serial, row.camera_name, row.camera_sha256 or ""),
                            []).append(row)
    doubled = {k: len(v) for k, v in by_ident.items() if len(v) > 1}
    assert not doubled, f"catalogued twice: {doubled}"
    for ident, sha in sources.items():
        if ident in held:
            continue
        [row] = by_ident.get(ident, [None])
        assert row is not None, f"{ident[:2]} left its camera, the catalog never heard of it"
        assert row.status in ("verified", "deleted_from_camera"), (ident[:2], row.status)
        owner = envs[row.stored_on]
        path = Path(row.store_path)
        assert owner.store in path.parents, f"{path} is not in {row.stored_on}'s store"
        assert age_decrypt_sha256(owner, path) == sha, f"{ident[:2]}: wrong bytes"
    return {k: v[0] for k, v in by_ident.items()}


def _reasons(events: list[dict[str, Any]]) -> list[str]:
    return [f for e in events if e.get("event") == "dock_session" for f in e["failures"]]


# --- two hosts ingesting at once ------------------------------------------------------------


def _own(host: str, n: int) -> list[dict[str, Any]]:
    return [{"serial": f"NC-{host.upper()}-{c}", "slot": c, "link_mb_s": 20,
             "recording": [recording(f"{host}_{c}_{i}.MP4", MIB + 977 * i, seed=100 * c + i
                                     + (0 if host == HOSTS[0] else 50), minute=i)
                           for i in range(3)]} for c in range(1, n + 1)]


TWIN = {"serial": "NC-TWIN", "slot": 5, "link_mb_s": 10,
        "recording": [recording(f"TWIN_{i}.MP4", 2 * MIB + i, seed=900 + i, minute=i)
                      for i in range(3)]}


def test_two_hosts_ingest_at_once_into_one_catalog(tmp_path: Path, pg: PgServer) -> None:
    """Two daemons, two stores, one catalog, at the same moment; and on both docks a camera
    with one serial and the same recordings (a clone, or one camera's twin). One chain with
    both hosts' events, gap-free; each twin recording stored once, by one host; the other
    host's twin keeps it (proven there, not here, and not in a vault: not deleted); dockctl on
    either host sees the whole fleet."""
    url = pg.database_url()
    envs = _fleet(tmp_path, url, {h: scenario_toml([*_own(h, 2), TWIN]) for h in HOSTS})
    seen: set[tuple[str | None, str]] = set()
    with Catalog.open(url, host="observer") as observer:
        def watch() -> None:  # `dockctl status` (any host) sees both hosts' docked cameras
            seen.update((d.host, d.serial) for d in live_status(observer).docked)

        results = _run_together(envs, reset=True, watch=watch)
        hosts = _chain_is_one_and_whole(observer)
        docks = {d.host for d in live_status(observer).docked}
    assert set(HOSTS) <= hosts
    assert {h for h, _ in seen} == set(HOSTS), seen
    assert not docks, "a session was left open"
    for host, (rc, events) in results.items():
        assert rc in (0, 6), (host, rc)
        for reason in _reasons(events):  # only the twin's recordings stored by the other
            assert "TWIN_" in reason and ("stored on host" in reason
                                          or "another dock session" in reason), reason
    rows = _nothing_lost_fleet(envs)
    assert len(rows) == 2 * 6 + 3
    twins = [r for r in rows.values() if r.camera_serial == "NC-TWIN"]
    assert all(r.stored_on in HOSTS for r in twins)
    for env in envs.values():  # each twin recording is gone from one camera at most
        on_twin = next(s for s in camera_states(env) if s.spec.serial == "NC-TWIN")
        kept = {r.name.decode() for r in on_twin.recordings()}
        here = {r.camera_name for r in twins if r.stored_on == env.root.name}
        assert not kept & here, "deleted on the other host, kept here"
        assert kept | here == {f"TWIN_{i}.MP4" for i in range(3)}
    counted = 0
    for env in envs.values():
        code, out = _dockctl(env, "verify", "--identity", str(env.key_file), "--json")
        assert code == 0, out
        report = json.loads(out)
        assert report["chain_ok"] and report["stored_on_other_hosts"] > 0
        counted += report["checked"]
        code, out = _dockctl(env, "recordings", "--json")
        assert code == 0 and len(json.loads(out)) == len(rows), out
        code, out = _dockctl(env, "cameras", "--json")
        assert code == 0, out
        assert {c["serial"] for c in json.loads(out)} == {
            *(f"NC-{h.upper()}-{c}" for h in HOSTS for c in (1, 2)), "NC-TWIN"}
        code, out = _dockctl(env, "ports", "--json")
        assert code == 0, out
        assert len(json.loads(out)) == 6, out  # three slots on each host's dock
    assert counted == len(rows)  # every stored copy is checked by the host that holds it
    with Catalog.open(url, host="observer") as observer, observer.reading() as s:
        docks_by_host = {host: name for name, host in s.execute(select(Dock.name, Dock.host))}
    assert docks_by_host == {"host-a": "dock-test", "host-b": "dock-test@host-b"} or (
        docks_by_host == {"host-b": "dock-test", "host-a": "dock-test@host-a"})



# --- one camera, docked at host A today and host B tomorrow ---------------------------------

MOVER = "NC-MOVER"


def _mover() -> str:
    """Three recordings; the third one's reads fail twice (at the first host), then work."""
    recs = [recording(f"M_{i}.MP4", MIB + 313 * i, seed=700 + i, minute=i) for i in range(3)]
    return scenario_toml([{"serial": MOVER, "slot": 3, "link_mb_s": 0, "recording": recs,
                           "fault": [{"kind": "read_error", "recording": "M_2.MP4",
                                      "at_byte": 0, "times": 2}]}])


def _vault_extra(weed: WeedServer, root: Path) -> str:
    creds = root / "vault.creds"
    creds.write_text(f"access_key = {weed.access_key}\nsecret_key = {weed.secret_key}\n")
    creds.chmod(0o600)
    return textwrap.dedent(f"""\
        [vault]
        endpoint = "{weed.endpoint}"
        bucket = "{weed.new_bucket(lock=True)}"
        credentials_file = "{creds}"
        part_mib = 5
        connect_timeout_s = 2
        read_timeout_s = 10
        max_attempts = 2
        """)


def _vault_once(env: Env) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DOCKD), "vault", "run", "--once", "--config", str(env.config)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_camera_docked_at_one_host_then_another_is_one_camera(tmp_path: Path, pg: PgServer,
                                                                 weed: WeedServer) -> None:
    """Day 1 at host A (copies kept on the camera): two recordings stored there, the third
    fails. Day 2 at host B: the third is stored at B; the two A holds are not deleted from the
    camera — A's copy cannot be proven at B, and no vault holds one yet. Once the vault
    service on A has put them in the vault, day 3 at B proves them by the vault's copy and
    deletes them. One camera row, one recording row each, one chain across both hosts."""
    url = pg.database_url()
    identity = generate_identity()
    extra = _vault_extra(weed, tmp_path)
    shared_flash = tmp_path / "mover-flash"
    envs = {}
    for host, keep in zip(HOSTS, (True, False), strict=True):
        (tmp_path / host).mkdir()
        envs[host] = make_env(tmp_path / host, scenario_text=_mover(), catalog_url=url,
                              host_id=host, identity=identity, extra=extra,
                              ingest={"max_retries": 1, "delete_after_ingest": not keep})
        envs[host].sim_state = shared_flash
    a, b = envs["host-a"], envs["host-b"]

    day1 = run_daemon(a, reset=True)
    assert day1.returncode == 6, day1.stderr
    [failed] = _reasons(day1.events)
    assert failed.startswith("M_2.MP4") and "read" in failed.lower()

    day2 = run_daemon(b)
    assert day2.returncode == 6, day2.stderr
    assert sorted(_reasons(day2.events)) == [
        f"M_{i}.MP4: stored on host host-a and not in the vault yet: proven there, not here; "
        "kept on the camera" for i in (0, 1)]
    with a.catalog() as catalog:
        rows = {r.camera_name: r for r in catalog.recordings()}
    assert {n: (r.status.value, r.stored_on) for n, r in rows.items()} == {
        "M_0.MP4": ("verified", "host-a"), "M_1.MP4": ("verified", "host-a"),
        "M_2.MP4": ("deleted_from_camera", "host-b")}
    [flash] = camera_states(b)
    assert {r.name.decode() for r in flash.recordings()} == {"M_0.MP4", "M_1.MP4"}

    for env in (a, b):  # each host's vault service sends its own copies
        done = _vault_once(env)
        assert done.returncode == 0, done.stdout + done.stderr
    day3 = run_daemon(b)
    assert day3.returncode == 0, _reasons(day3.events)
    [flash] = camera_states(b)
    assert list(flash.recordings()) == []

    with a.catalog() as catalog:
        hosts = _chain_is_one_and_whole(catalog)
        rows = {r.camera_name: r for r in catalog.recordings()}
        [camera] = catalog.cameras()
        sessions = catalog.sessions(MOVER)
        deletes = [e.details_dict for e in catalog.events()
                   if e.kind == "deleted_from_camera" and e.host == "host-b"]
    assert camera.serial == MOVER and len(rows) == 3 and len(sessions) == 3
    assert all(r.status.value == "deleted_from_camera" and r.vault_version for r in
               rows.values())
    assert {"host-a", "host-b"} <= hosts
    assert sorted(d["proof"]["how"] for d in deletes) == ["vaulted", "vaulted", "written"]
    _nothing_lost_fleet(envs)
    for env in (a, b):
        code, out = _dockctl(env, "verify", "--identity", str(env.key_file), "--json")
        assert code == 0, out


# --- PostgreSQL restarted, then killed, while two hosts ingest ------------------------------


def _slow(host: str) -> list[dict[str, Any]]:
    return [{"serial": f"NC-{host.upper()}-S{c}", "slot": c, "link_mb_s": 4,
             "recording": [recording(f"{host}_s{c}_{i}.MP4", 3 * MIB + 4099 * i,
                                     seed=300 + 10 * c + i + (0 if host == HOSTS[0] else 5),
                                     minute=i) for i in range(3)]} for c in (1, 2)]


def _wait_logged(log: Path, event: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while f'"event": "{event}"' not in log.read_text():
        assert time.monotonic() < deadline, f"no {event} in {log}"
        time.sleep(0.02)


def test_postgresql_restarted_and_killed_while_two_hosts_ingest(tmp_path: Path,
                                                                pg: PgServer) -> None:
    """An administrator restarts PostgreSQL under two ingesting hosts, then it crashes and is
    down for a second. Transactions starting meanwhile wait for it; a session it cuts short
    starts again by itself (its partial resumes); nothing is lost, stored twice or left
    open, and the chain stays one, valid and gap-free."""
    url = pg.database_url()
    envs = _fleet(tmp_path, url, {h: scenario_toml(_slow(h)) for h in HOSTS},
                  ingest={"checkpoint_mib": 1})
    logs = {h: e.root / "faulted.json" for h, e in envs.items()}
    procs = {h: start_daemon(e, logs[h], reset=True) for h, e in envs.items()}
    try:
        for log in logs.values():
            _wait_logged(log, "camera_docked")
        time.sleep(0.6)
        assert all(p.poll() is None for p in procs.values()), "ingest ended before the fault"
        pg.restart("fast")
        time.sleep(0.8)
        assert all(p.poll() is None for p in procs.values()), "ingest ended before the crash"
        pg.kill()
        time.sleep(1.0)
        pg.start()
        rcs = {h: p.wait(timeout=120) for h, p in procs.items()}
    finally:
        if not pg.running():
            pg.start()
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    for host, rc in rcs.items():
        text = logs[host].read_text()
        assert "Traceback" not in text, text[-3000:]
        assert rc in (0, 6), (host, rc, text[-2000:])
    # whatever the faults cut short, a calm run of each host finishes it
    results = _run_together(envs, reset=False)
    for host, (rc, events) in results.items():
        assert rc == 0, (host, _reasons(events))
    rows = _nothing_lost_fleet(envs)
    assert len(rows) == 2 * 2 * 3
    assert all(not list(s.recordings()) for e in envs.values() for s in camera_states(e))
    with Catalog.open(url, host="observer") as observer:
        assert set(HOSTS) <= _chain_is_one_and_whole(observer)
        live = live_status(observer)
        assert live.docked == [] and live.in_flight == [], live
    for env in envs.values():
        code, out = _dockctl(env, "verify", "--identity", str(env.key_file), "--json")
        assert code == 0, out


def test_a_partial_whose_recording_another_host_stored_is_removed_at_start(
        tmp_path: Path) -> None:
    """Found by the two-host torture (seed 1972252121): host A was cut mid-transfer, host B
    stored the recording and the camera deleted it; A's partial and its resume sidecar (a
    file key) stayed in A's store for good. At start-up A removes a partial whose recording
    is in custody anywhere, and keeps one that may still resume."""
    from retention_env import make_store  # noqa: PLC0415 - a world of real stored rows

    from dockd.custody import final_path_for  # noqa: PLC0415
    from dockd.daemon import _clean_unresumable  # noqa: PLC0415
    from dockd.model import RecordingInfo  # noqa: PLC0415
    from dockd.store import partial_path, sidecar_path  # noqa: PLC0415

    world = make_store(tmp_path / "host-b", host="host-b")
    done = world.add("T1_02.MP4")  # stored and proven by host B, deleted from the camera
    info = RecordingInfo(name="T1_03.MP4", size=5000, started=done.started, duration_s=1.0,
                         prerecord_s=0.0, sha256=bytes(32))
    waiting = world.catalog.recording_for("NC-1", info)  # listed, never stored anywhere
    root_a = tmp_path / "host-a" / "evidence"
    url = f"sqlite:///{tmp_path / 'host-b' / 'catalog.sqlite'}"
    with Catalog.open(url, host="host-a") as catalog_a:
        rows = catalog_a.recordings(camera="NC-1")
        partials = {}
        for rec in (done, waiting):
            final = final_path_for(root_a, [r for r in rows if r.camera_name == rec.camera_name],
                                   rec)
            final.parent.mkdir(parents=True, exist_ok=True)
            partial = partial_path(final, "deadwriter")
            partial.write_bytes(b"age ciphertext, cut short")
            sidecar_path(partial).write_text("{}")  # its resume state: a file key
            partials[rec.camera_name] = partial
        _clean_unresumable(root_a, catalog_a)
    gone = partials["T1_02.MP4"]
    assert not gone.exists() and not sidecar_path(gone).exists()
    kept = partials["T1_03.MP4"]
    assert kept.exists() and sidecar_path(kept).exists()
