"""The vault service against a real S3 Object Lock server (SeaweedFS), no mocks.

Each test builds a small evidence world (tests/retention_env.py: a real SQLite catalog, real
files gone through the real write order) and runs `VaultService` passes or the real
`dockd vault run` process against one module-wide `weed` server. Faults are real: the server
is killed mid-upload and restarted, stopped (SIGSTOP) so requests time out, given wrong keys,
or asked to hold a bucket without Object Lock. The invariant checked each time: nothing is
deleted anywhere without the copies the rules demand, and the next pass picks up the work.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers_ingest import (
    assert_nothing_lost,
    make_env,
    recording,
    scenario_toml,
    start_daemon,
    still_on_camera,
)
from retention_env import DAY, HOST, Store, make_store
from structlog.testing import capture_logs
from vault_server import Front, WeedServer, weed_fixture

from dockd.catalog import Catalog, EventKind
from dockd.cli.dockctl_cmd import main as dockctl
from dockd.config import UNTIL_RELEASED
from dockd.retention import kept_until, sweep_local
from dockd.vault import Secret, VaultClient, VaultRefused, VaultSettings
from dockd.vault.service import VaultService, status_key, vault_key

MiB = 1 << 20
DOCKD = Path(sys.executable).with_name("dockd")

weed = weed_fixture("module")


@pytest.fixture(scope="module")
def bucket(weed: WeedServer) -> str:
    return weed.new_bucket()


@pytest.fixture(scope="module")
def gov_bucket(weed: WeedServer) -> str:
    return weed.new_bucket()


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def world(tmp_path: Path, settings: VaultSettings, *, start: datetime | None = None,
          days: float = 14.0) -> Store:
    return make_store(tmp_path, start=start or now_utc(), days=days, vault=settings,
                      categories=(("evidence", UNTIL_RELEASED),))


def service(store: Store, settings: VaultSettings | None = None, *,
            now: datetime | None = None, bypass: bool = False) -> VaultService:
    config = store.config if settings is None else replace(store.config, vault=settings)
    assert config.vault is not None
    return VaultService(config, store.catalog, VaultClient(config.vault),
                        now=(lambda: now) if now is not None else None,
                        bypass_governance=bypass)


def b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def status(store: Store) -> dict[str, Any]:
    raw = store.catalog.setting(status_key(HOST))
    assert raw is not None
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value


@pytest.fixture
def store(tmp_path: Path, weed: WeedServer, bucket: str) -> Iterator[Store]:
    s = world(tmp_path, weed.settings(bucket))
    yield s
    s.catalog.close()


# --- uploads ---------------------------------------------------------------------------


def test_uploads_land_with_checksum_metadata_and_lock(store: Store, weed: WeedServer,
                                                      bucket: str) -> None:
    a = store.add("A.MP4", size=3000)
    b = store.add("B.MP4", size=70_000)
    svc = service(store)
    cycle = svc.cycle()
    assert (cycle.uploaded, cycle.waiting, cycle.error, cycle.failed) == ([a.id, b.id], 0,
                                                                          None, {})
    client = svc.client
    for rec in (store.rec("A.MP4"), store.rec("B.MP4")):
        assert rec.vault_key == vault_key(rec) and rec.vault_version
        state = client.head(rec.vault_key, rec.vault_version)
        assert state.exists and state.size == rec.stored_size
        # the server checked and keeps the catalog's SHA-256 of the ciphertext
        assert state.checksum == b64(str(rec.stored_sha256)) == rec.vault_checksum
        assert state.lock_mode == "COMPLIANCE" and not state.legal_hold
        until = kept_until(rec, store.config.retention)
        assert until is not None and state.retain_until == until == rec.vault_lock_until
        assert dict(state.metadata) == {
            "serial": "NC-1", "recording-id": str(rec.id), "host": HOST,
            "plaintext-sha256": rec.plaintext_sha256, "stored-sha256": rec.stored_sha256}
        assert client.sha256_of(rec.vault_key, rec.vault_version) == rec.stored_sha256
    # each upload is a custody event whose facts name key, version and checksum
    vaulted = store.events(EventKind.VAULTED)
    assert [e.recording_id for e in vaulted] == [a.id, b.id]
    facts = vaulted[0].details_dict["recording"]
    assert (facts["vault_key"], facts["vault_version"], facts["vault_checksum"]) == (
        store.rec("A.MP4").vault_key, store.rec("A.MP4").vault_version,
        store.rec("A.MP4").vault_checksum)
    assert all(e.actor == "dockd-vault" for e in vaulted)
    assert status(store)["state"] == "ok" and status(store)["waiting"] == 0
    # a second pass has nothing to do: no second version of anything
    assert svc.cycle().uploaded == []
    versions = weed.admin().list_object_versions(Bucket=bucket, Prefix="NC-1/")["Versions"]
    assert sorted(v["Key"] for v in versions if v["Key"].endswith(("A.MP4.age",
                                                                  "B.MP4.age"))) == sorted(
        [str(store.rec("A.MP4").vault_key), str(store.rec("B.MP4").vault_key)])
    assert store.catalog.verify_chain() == []


def test_hold_and_release_are_mirrored_onto_the_object(store: Store) -> None:
    held = store.add("HELD.MP4")
    later = store.add("LATER.MP4")
    store.catalog.set_hold(held.id, True, reason="case 2026-117", actor="dockctl:ann")
    svc = service(store)
    svc.cycle()
    client = svc.client
    h = store.rec("HELD.MP4")
    state = client.head(str(h.vault_key), str(h.vault_version))
    assert state.legal_hold and h.vault_hold  # uploaded with the hold on
    assert state.retain_until is not None and state.retain_until > now_utc()

    store.catalog.set_hold(later.id, True, reason="court order", actor="dockctl:ann")
    store.catalog.set_hold(held.id, False, reason=None, actor="dockctl:ann")
    cycle = svc.cycle()
    assert sorted(cycle.holds) == sorted([held.id, later.id])
    h, ll = store.rec("HELD.MP4"), store.rec("LATER.MP4")
    assert client.head(str(ll.vault_key), str(ll.vault_version)).legal_hold
    released = client.head(str(h.vault_key), str(h.vault_version))
    assert not released.legal_hold and not h.vault_hold
    # released: its retention applies again, and the lock is brought up to it
    assert cycle.locks == [held.id]
    assert released.retain_until == kept_until(h, store.config.retention) == h.vault_lock_until
    kinds = [e.kind for e in store.catalog.events() if e.recording_id == held.id]
    assert kinds[-3:] == ["legal_hold_released", "vault_hold_mirrored", "vault_lock_extended"]
    # a category kept until released is a legal hold in the vault too
    store.catalog.set_category(later.id, "evidence", actor="dockctl:ann")
    store.catalog.set_hold(later.id, False, reason=None, actor="dockctl:ann")
    svc.cycle()
    assert client.head(str(ll.vault_key), str(ll.vault_version)).legal_hold


def test_locked_versions_cannot_be_deleted_early_and_held_ones_not_at_all(
        store: Store) -> None:
    """COMPLIANCE: not even the service, not even with the governance bypass; a legal hold:
    not even after its date (proven on objects the service uploaded)."""
    a = store.add("A.MP4")
    held = store.add("H.MP4")
    store.catalog.set_hold(held.id, True, reason="case 9", actor="dockctl:ann")
    svc = service(store)
    svc.cycle()
    client = svc.client
    ra, rh = store.rec("A.MP4"), store.rec("H.MP4")
    for rec in (ra, rh):
        for bypass in (False, True):
            with pytest.raises(VaultRefused) as exc:
                client.delete_version(str(rec.vault_key), str(rec.vault_version),
                                      bypass_governance=bypass)
            assert "\n" not in str(exc.value)
    assert "legal hold" in str(exc.value)

    # the catalog's clock says day 15; the vault's says day 0 and keeps the COMPLIANCE lock:
    # the refusal is one line for that recording, the pass goes on, nothing is recorded
    day15 = now_utc() + 15 * DAY
    assert sweep_local(store.catalog, store.config, day15).deleted == [a.id]
    late = service(store, now=day15)
    with capture_logs() as logs:
        cycle = late.cycle()
    assert cycle.error is None and list(cycle.failed) == [a.id] and cycle.deleted == []
    (line,) = [e for e in logs if e["event"] == "vault_delete_refused"]
    assert line["recording_id"] == a.id and "COMPLIANCE retention until" in line["error"]
    assert store.rec("A.MP4").vault_deleted_at is None
    assert client.head(str(ra.vault_key), str(ra.vault_version)).exists
    assert client.head(str(rh.vault_key), str(rh.vault_version)).legal_hold
    assert status(store)["state"] == "ok"


def test_a_released_hold_whose_retention_ended_does_not_stall_the_vault(
        tmp_path: Path, weed: WeedServer, bucket: str) -> None:
    """Listed 20 days ago with 14 days' retention, held since; the object's short lock has
    ended. Released today: its retention is over, so its lock is not 'extended' into the
    past (which the vault refuses) — and the recording behind it still gets uploaded."""
    store = world(tmp_path, weed.settings(bucket), start=now_utc() - 20 * DAY)
    old = store.add("OLD.MP4")
    store.catalog.set_hold(old.id, True, reason="case 3", actor="dockctl:ann")
    client = VaultClient(weed.settings(bucket))
    path = store.path("OLD.MP4")
    until = datetime.now(UTC) + timedelta(seconds=2)
    receipt = client.upload(path, vault_key(old), stored_sha256=str(old.stored_sha256),
                            retain_until=until, legal_hold=True, metadata={},
                            resume_dir=tmp_path / "resume")
    store.catalog.mark_vaulted(old.id, key=receipt.key, version=receipt.version_id,
                               checksum=receipt.checksum_sha256_b64, lock_until=until,
                               hold=True, actor="dockd-vault")
    store.clock.now = now_utc()
    new = store.add("NEW.MP4")
    store.catalog.set_hold(old.id, False, reason=None, actor="dockctl:ann")
    while datetime.now(UTC) <= until + timedelta(seconds=1):
        pass  # the object's own lock ends (a real wait of ~3 s)
    cycle = service(store).cycle()
    assert cycle.error is None, cycle.error
    assert cycle.holds == [old.id] and cycle.locks == [] and cycle.uploaded == [new.id]
    assert not client.head(receipt.key, receipt.version_id).legal_hold
    store.catalog.close()


def test_a_version_missing_from_the_vault_does_not_stop_the_others(
        tmp_path: Path, weed: WeedServer, gov_bucket: str) -> None:
    settings = weed.settings(gov_bucket, lock_mode="GOVERNANCE")
    store = world(tmp_path, settings)
    gone = store.add("GONE.MP4")
    svc = service(store)
    svc.cycle()
    g = store.rec("GONE.MP4")
    # an administrator with the bypass right deletes the version behind dockd's back
    weed.admin().delete_object(Bucket=gov_bucket, Key=str(g.vault_key),
                               VersionId=str(g.vault_version), BypassGovernanceRetention=True)
    store.catalog.set_hold(gone.id, True, reason="case 4", actor="dockctl:ann")
    other = store.add("OTHER.MP4")
    with capture_logs() as logs:
        cycle = svc.cycle()
    assert cycle.error is None and list(cycle.failed) == [gone.id]
    assert cycle.uploaded == [other.id]
    (line,) = [e for e in logs if e["event"] == "vault_object_missing"]
    assert line["recording_id"] == gone.id
    store.catalog.close()


def test_a_missing_local_file_defers_only_its_own_upload(store: Store) -> None:
    store.add("LOST.MP4")
    ok = store.add("OK.MP4")
    store.path("LOST.MP4").unlink()
    cycle = service(store).cycle()
    assert cycle.error is None and cycle.uploaded == [ok.id] and cycle.waiting == 1


# --- faults -------------------------------------------------------------------------------


def test_vault_killed_mid_upload_resumes_and_nothing_is_deleted_meanwhile(
        tmp_path: Path, weed: WeedServer, bucket: str) -> None:
    settings = weed.settings(bucket, max_attempts=1, connect_timeout_s=1.0)
    store = world(tmp_path, settings)
    big = store.add("BIG.MP4", size=11 * MiB, seed=11)  # three parts of 5, 5 and 1 MiB
    small = store.add("SMALL.MP4")
    svc = service(store)
    calls: list[int] = []

    def beat() -> None:  # once per recording, once per part the vault confirmed
        calls.append(1)
        if len(calls) == 2:  # part 1 of BIG is in: the vault dies
            weed.kill()

    try:
        with capture_logs() as logs:
            cycle = svc.cycle(beat)
        assert cycle.error is not None and cycle.error.startswith("unreachable: ")
        assert "part 2/3" in cycle.error and "\n" not in cycle.error
        assert [e["event"] for e in logs if e.get("log_level") == "error"] == [
            "vault_unavailable"]
        assert status(store)["state"] == "error" and status(store)["waiting"] == 1
        # expired by the catalog's clock, but no vault copy: nothing goes
        report = sweep_local(store.catalog, store.config, now_utc() + 15 * DAY)
        assert report.deleted == [] and set(report.kept) == {big.id, small.id}
        assert store.path("BIG.MP4").exists() and store.path("SMALL.MP4").exists()
    finally:
        weed.restart()
    seen: list[int] = []
    resumed = svc.cycle(lambda: seen.append(1))
    assert resumed.error is None and resumed.uploaded == [big.id, small.id]
    rec = store.rec("BIG.MP4")
    assert rec.vault_checksum is not None and rec.vault_checksum.endswith("-3")
    assert svc.client.sha256_of(str(rec.vault_key), str(rec.vault_version)) == rec.stored_sha256
    versions = weed.admin().list_object_versions(Bucket=bucket, Prefix=str(rec.vault_key))
    assert len(versions["Versions"]) == 1  # resumed, not uploaded twice
    assert list((store.root / ".vault-uploads").glob("*.json")) == []
    after = status(store)
    assert after | {"at": None, "last_upload": None, "last_error_at": None} == {
        "host": HOST, "at": None, "state": "ok", "waiting": 0, "error": None,
        "last_upload": None, "last_error": cycle.error, "last_error_at": None}
    assert after["last_upload"] == after["at"]  # this pass uploaded
    assert store.catalog.verify_chain() == []
    assert [e.recording_id for e in store.events(EventKind.VAULTED)] == [big.id, small.id]
    store.catalog.close()


def test_a_vault_that_stops_answering_times_out_and_the_next_pass_completes(
        tmp_path: Path, weed: WeedServer, bucket: str) -> None:
    settings = weed.settings(bucket, max_attempts=1, read_timeout_s=1.0)
    store = world(tmp_path, settings)
    rec = store.add("A.MP4")
    svc = service(store)
    assert weed.proc is not None
    os.kill(weed.proc.pid, signal.SIGSTOP)  # alive, connections accepted, no answer
    try:
        cycle = svc.cycle()
    finally:
        os.kill(weed.proc.pid, signal.SIGCONT)
    assert cycle.error is not None and "no answer in time" in cycle.error
    assert store.rec("A.MP4").vault_version is None
    assert service(store).cycle().uploaded == [rec.id]
    store.catalog.close()


def test_wrong_credentials_are_one_line_and_nothing_is_deleted(
        store: Store, weed: WeedServer, bucket: str) -> None:
    store.add("A.MP4")
    wrong = weed.settings(bucket, secret_key=Secret("not-the-secret-42"))
    cycle = service(store, wrong).cycle()
    assert cycle.error is not None and cycle.error.startswith("refused: ")
    assert "SignatureDoesNotMatch" in cycle.error and "not-the-secret-42" not in cycle.error
    assert status(store)["state"] == "error"
    assert sweep_local(store.catalog, store.config, now_utc() + 15 * DAY).deleted == []
    assert store.path("A.MP4").exists()
    assert store.catalog.verify_chain() == [] and store.events(EventKind.VAULTED) == []


def test_a_vault_answering_503_mid_pass_loses_nothing_and_the_next_pass_completes(
        tmp_path: Path, weed: WeedServer) -> None:
    """A gateway in front of the vault starts answering 503 SlowDown after the first
    upload: the pass ends with one line, the second recording waits (not lost, not
    deleted), the next pass once the gateway recovers sends it — once."""
    bucket = weed.new_bucket()  # its own: the module's bucket has other tests' B.MP4 keys
    front = Front(weed.ports["s3"])
    try:
        settings = weed.settings(bucket, endpoint=front.endpoint, max_attempts=1)
        store = world(tmp_path, settings)
        first, second = store.add("A.MP4"), store.add("B.MP4")
        svc = service(store)

        def beat() -> None:  # once per recording, once per part: B's turn comes after A's
            if store.catalog.recording(first.id).vault_version is not None:
                front.fail(503)

        cycle = svc.cycle(beat)
        assert cycle.uploaded == [first.id] and cycle.waiting == 1 and front.answered
        assert cycle.error is not None and cycle.error.startswith("unreachable: ")
        assert "SlowDown" in cycle.error and "\n" not in cycle.error
        assert status(store)["state"] == "error" and status(store)["waiting"] == 1
        report = sweep_local(store.catalog, store.config, now_utc() + 15 * DAY)
        assert report.deleted == [first.id] and set(report.kept) == {second.id}
        assert store.path("B.MP4").exists()
        front.heal()
        again = svc.cycle()
        assert again.error is None and again.uploaded == [second.id] and again.waiting == 0
        rec = store.rec("B.MP4")
        versions = weed.admin().list_object_versions(Bucket=bucket, Prefix=str(rec.vault_key))
        assert [v["VersionId"] for v in versions["Versions"]] == [rec.vault_version]
        assert svc.client.sha256_of(str(rec.vault_key), str(rec.vault_version)) == (
            rec.stored_sha256)
        assert store.catalog.verify_chain() == []
        store.catalog.close()
    finally:
        front.close()


def test_ingest_goes_on_while_the_vault_answers_503_and_the_vault_catches_up(
        tmp_path: Path, weed: WeedServer) -> None:
    """The real daemon ingests a dock while the vault answers nothing but 503, and the real
    vault service, started beside it, refuses in one line: every recording is stored,
    verified and deleted from its camera on the proof of its local copy — ingest never
    waits for the vault — and retention deletes nothing that has no vault copy. Once the
    vault answers, the service catches up by itself: one version each, the chain valid."""
    bucket = weed.new_bucket()  # its own: each object of it is this test's
    front = Front(weed.ports["s3"])
    front.fail(503)
    try:
        creds = tmp_path / "vault.cred"
        creds.write_text(f"access_key = {weed.access_key}\nsecret_key = {weed.secret_key}\n")
        creds.chmod(0o600)
        extra = ("[retention]\ndefault_days = 14\n"
                 f'[vault]\nendpoint = "{front.endpoint}"\nbucket = "{bucket}"\n'
                 f'credentials_file = "{creds}"\npart_mib = 5\nmax_attempts = 1\n'
                 "connect_timeout_s = 2.0\nread_timeout_s = 10.0\n")
        names = [f"V_{i}.MP4" for i in range(3)]
        scenario = scenario_toml([{"serial": "NC-V", "slot": 1, "link_mb_s": 20, "recording": [
            recording(name, 300_000 + 7 * i, seed=40 + i, minute=i)
            for i, name in enumerate(names)]}])
        env = make_env(tmp_path, scenario_text=scenario, host_id=HOST, extra=extra)
        daemon = start_daemon(env, tmp_path / "dockd.json", reset=True)
        refused = _vault_run(env.config)
        assert daemon.wait(timeout=120) == 0, (tmp_path / "dockd.json").read_text()[-3000:]
        assert refused.returncode == 9, refused.stdout + refused.stderr
        [line] = refused.stderr.strip().splitlines()
        assert line.startswith("dockd: vault ") and "SlowDown" in line and front.answered

        assert_nothing_lost(env)
        assert still_on_camera(env) == {"NC-V": set()}
        with env.catalog() as catalog:
            rows = catalog.recordings()
            proofs = [e.details_dict["proof"]["how"] for e in catalog.events()
                      if e.kind == EventKind.DELETED_FROM_CAMERA]
        assert sorted(r.camera_name for r in rows) == names and proofs == ["written"] * 3
        assert all(r.vault_version is None for r in rows)
        lines, _ = _status_lines(env.config)
        assert len(lines) == 1 and lines[0].startswith(
            f"Vault ({HOST}): 3 waiting (stored, not yet vaulted); last upload never; "
            "ERROR since ") and "SlowDown" in lines[0], lines
        later = (datetime.now(UTC) + 15 * DAY).strftime("%Y-%m-%dT%H:%M:%S")
        swept = CliRunner().invoke(dockctl, ["retention", "--config", str(env.config),
                                             "--sweep", "--at", later, "--json"])
        assert swept.exit_code == 0, swept.output
        assert json.loads(swept.stdout)["sweep"] == {
            "dry_run": False, "deleted": [],
            "kept": {str(r.id): "waits for the vault's verified copy" for r in rows}}

        front.heal()
        done = _vault_run(env.config)
        assert done.returncode == 0, done.stderr
        with env.catalog() as catalog:
            assert catalog.verify_chain() == []
            rows = catalog.recordings()
        for rec in rows:
            versions = weed.admin().list_object_versions(Bucket=bucket,
                                                         Prefix=str(rec.vault_key))
            assert [v["VersionId"] for v in versions["Versions"]] == [rec.vault_version]
        lines, _ = _status_lines(env.config)
        assert lines[0].startswith(f"Vault ({HOST}): 0 waiting (stored, not yet vaulted); "
                                   "last upload ") and "; last error " in lines[0], lines
        assert_nothing_lost(env)
    finally:
        front.close()


def _status_lines(config: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """`dockctl status`: its vault lines, and the `vault` part of its --json."""
    text = CliRunner().invoke(dockctl, ["status", "--config", str(config)],
                              prog_name="dockctl")
    assert text.exit_code == 0, text.output
    doc = CliRunner().invoke(dockctl, ["status", "--config", str(config), "--json"],
                             prog_name="dockctl")
    assert doc.exit_code == 0, doc.output
    vault = json.loads(doc.stdout)["vault"]
    assert isinstance(vault, list)
    return [line for line in text.stdout.splitlines() if line.startswith("Vault (")], vault


def test_dockctl_status_shows_backlog_last_upload_and_last_error(
        tmp_path: Path, weed: WeedServer, bucket: str) -> None:
    """One line per dock host: what waits for the vault (from the catalog, whichever host
    stored it), the last upload, the last error — and the same in --json."""
    store = world(tmp_path, weed.settings(bucket))
    config = _config(tmp_path, weed, bucket)
    store.add("A.MP4")
    store.add("B.MP4")
    other = Store(tmp_path / "b", Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite'}",
                                               host="dock-b", clock=store.clock),
                  store.clock, store.config)
    other.add("C.MP4", serial="NC-2")  # stored on dock-b, whose vault service never ran
    never = ("Vault (dock-b): 1 waiting (stored, not yet vaulted); last upload never; the "
             "vault service has not reported (is dockd-vault.service running?)")
    lines, _ = _status_lines(config)
    assert lines == [f"Vault ({HOST}): 2 waiting (stored, not yet vaulted); last upload "
                     "never; the vault service has not reported (is dockd-vault.service "
                     "running?)", never]
    at = f"{store.clock.now:%Y-%m-%d %H:%M:%S}Z"

    failed = service(store, weed.settings(bucket, secret_key=Secret("wrong-secret-5"))).cycle()
    assert failed.error is not None and failed.error.startswith("refused: ")
    lines, _ = _status_lines(config)
    assert lines == [f"Vault ({HOST}): 2 waiting (stored, not yet vaulted); last upload "
                     f"never; ERROR since {at}: {failed.error}", never]

    assert len(service(store).cycle().uploaded) == 2
    lines, vault = _status_lines(config)
    assert lines == [f"Vault ({HOST}): 0 waiting (stored, not yet vaulted); last upload "
                     f"{at}; ok at {at}; last error {at}: {failed.error}", never]
    iso = store.clock.now.isoformat()
    assert vault == [
        {"host": HOST, "backlog": 0, "state": "ok", "at": iso, "error": None,
         "last_upload": iso, "last_error": failed.error, "last_error_at": iso},
        {"host": "dock-b", "backlog": 1, "state": "unknown", "at": None, "error": None,
         "last_upload": None, "last_error": None, "last_error_at": None}]
    other.catalog.close()
    store.catalog.close()


def test_no_vault_anywhere_means_no_vault_line(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.add("A.MP4")
    store.catalog.close()
    config = tmp_path / "dockd.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "evidence"}"\nmin_free_mib = 0\n'
                      f'[catalog]\nurl = "sqlite:///{tmp_path / "catalog.sqlite"}"\n')
    assert _status_lines(config) == ([], [])


# --- the real `dockd vault run` process ----------------------------------------------------


def _config(tmp_path: Path, weed: WeedServer, bucket: str, *, days: int = 14,
            secret: str | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    creds = tmp_path / "vault.cred"
    creds.write_text(f"access_key = {weed.access_key}\n"
                     f"secret_key = {secret or weed.secret_key}\n")
    creds.chmod(0o600)
    config = tmp_path / "dockd.toml"
    config.write_text(
        f'[storage]\npath = "{tmp_path / "evidence"}"\nmin_free_mib = 0\n'
        f'[catalog]\nurl = "sqlite:///{tmp_path / "catalog.sqlite"}"\n'
        f'[host]\nid = "{HOST}"\n[retention]\ndefault_days = {days}\n'
        f'[log]\nformat = "json"\n'
        f'[vault]\nendpoint = "{weed.endpoint}"\nbucket = "{bucket}"\n'
        f'credentials_file = "{creds}"\npart_mib = 5\nmax_attempts = 1\n'
        "connect_timeout_s = 2.0\nread_timeout_s = 10.0\n")
    return config


def _vault_run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DOCKD), "vault", "run", "--config", str(config), "--once",
                           *args], capture_output=True, text=True, timeout=120, check=False)


def _refusal(tmp_path: Path, done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 9, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dockd: vault "), done.stderr
    store = make_store(tmp_path)  # the same catalog: the refusal is where status reads it
    try:
        state = status(store)
    finally:
        store.catalog.close()
    assert state["state"] == "error" and lines[0].endswith(state["error"].split(": ", 1)[1])
    return lines[0]


def test_dockd_vault_run_refuses_an_unfit_bucket_in_one_line(
        tmp_path: Path, weed: WeedServer, bucket: str) -> None:
    unlocked = weed.new_bucket(lock=False)
    line = _refusal(tmp_path / "a", _vault_run(_config(tmp_path / "a", weed, unlocked)))
    assert "has no Object Lock" in line
    short = weed.new_bucket(default=("COMPLIANCE", 7))
    line = _refusal(tmp_path / "b", _vault_run(_config(tmp_path / "b", weed, short)))
    assert "default retention of 7 days" in line and "policy's 14 days" in line
    line = _refusal(tmp_path / "c", _vault_run(_config(tmp_path / "c", weed, bucket,
                                                       secret="wrong-secret-77")))
    assert "SignatureDoesNotMatch" in line and "wrong-secret-77" not in line
    # and a fit one runs: nothing to upload, exit 0
    ok = _vault_run(_config(tmp_path / "d", weed, bucket))
    assert ok.returncode == 0, ok.stderr
    assert '"event": "vault_cycle"' in ok.stderr


def test_at_is_refused_on_a_catalog_of_real_evidence(tmp_path: Path, weed: WeedServer,
                                                     bucket: str) -> None:
    config = _config(tmp_path, weed, bucket)
    store = make_store(tmp_path)
    store.catalog.claim_setting("mode", "real")
    store.catalog.close()
    done = _vault_run(config, "--at", "2030-01-01")
    assert done.returncode == 2, done.stderr
    assert "only a simulated catalog may run ahead of the clock" in done.stderr
