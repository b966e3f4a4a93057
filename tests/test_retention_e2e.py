"""Retention proven end to end on a simulated clock, with the real processes and a real S3
Object Lock vault (SeaweedFS): the issue's must-show.

Day 0: the real `dockd run --simulate … --once` ingests a small fleet; `dockctl hold` puts one
recording on legal hold; `dockd vault run --once` copies everything to the vault (GOVERNANCE
bucket). Day 15, with a 14-day policy: `dockctl retention --sweep --at DAY15` deletes the
local copies, `dockd vault run --once --at DAY15` the vault versions — all but the held
recording's, which survives in both places. Between the two sweeps a recording whose local
copy is gone is exported from the vault. `dockctl verify` (with and without `--vault`) stays
green and lists the tombstones; the chain stays valid.

The clock that runs ahead is dockd's (`--at`, simulated catalogs only): the `weed` binary
keeps the real time, so the vault's lock is a GOVERNANCE one that the simulated run may
bypass (a COMPLIANCE lock would, rightly, refuse: tests/test_vault_service.py shows it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from dockctl_env import netco_scenario, source_bytes
from vault_server import WeedServer, weed_fixture

from dockd.catalog import Catalog, EventKind, RecordingRow
from dockd.cli.dockctl_cmd import main as dockctl
from dockd.crypto.keys import generate_identity
from dockd.vault import VaultClient, VaultRefused

DOCKD = Path(sys.executable).with_name("dockd")
HOST = "dock-e2e"
#: (serial, name, size, seed)
FLEET = [
    ("NC-1", "A_0001.MP4", 200_000, 1),
    ("NC-1", "B_0002.MP4", 65_536, 2),
    ("NC-2", "C_0003.MP4", 1_000, 3),
    ("NC-2", "D_0004.MP4", 70_000, 4),
    ("NC-3", "E_0005.MP4", 5_000, 5),
]
HELD = "B_0002.MP4"
EXPORTED = "A_0001.MP4"

weed = weed_fixture("module")


def _scenario() -> str:
    return netco_scenario(FLEET, dock="dock-e2e", serials=("NC-1", "NC-2", "NC-3"))


class Fleet:
    def __init__(self, root: Path, weed: WeedServer, bucket: str) -> None:
        self.root = root
        secret, self.recipient = generate_identity()
        self.key = root / "key.txt"
        self.key.write_text(secret + "\n")
        self.key.chmod(0o600)
        self.store = root / "evidence"
        self.catalog_path = root / "catalog.sqlite"
        creds = root / "vault.cred"
        creds.write_text(f"access_key = {weed.access_key}\nsecret_key = {weed.secret_key}\n")
        creds.chmod(0o600)
        self.config = root / "dockd.toml"
        self.config.write_text(
            f"[storage]\npath = {json.dumps(str(self.store))}\nmin_free_mib = 0\n"
            f"[catalog]\nurl = {json.dumps(f'sqlite:///{self.catalog_path}')}\n"
            f"[encryption]\nrecipients = [{json.dumps(self.recipient)}]\n"
            f'[host]\nid = "{HOST}"\n'
            "[retention]\ndefault_days = 14\n"
            '[log]\nformat = "json"\n'
            f'[vault]\nendpoint = "{weed.endpoint}"\nbucket = "{bucket}"\n'
            f'lock_mode = "GOVERNANCE"\ncredentials_file = "{creds}"\npart_mib = 5\n'
            "max_attempts = 2\nconnect_timeout_s = 2.0\nread_timeout_s = 10.0\n")
        self.client = VaultClient(weed.settings(bucket, lock_mode="GOVERNANCE"))

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(DOCKD), *argv], capture_output=True, text=True,
                              timeout=120, check=False)

    def dockctl(self, *args: str) -> Result:
        cmd, *rest = args
        return CliRunner().invoke(dockctl, [cmd, "--config", str(self.config), *rest],
                                  prog_name="dockctl")

    def json(self, *args: str) -> Any:
        result = self.dockctl(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def recordings(self) -> dict[str, RecordingRow]:
        with Catalog.open(f"sqlite:///{self.catalog_path}") as c:
            return {r.camera_name: r for r in c.recordings()}

    def kinds(self) -> list[str]:
        with Catalog.open(f"sqlite:///{self.catalog_path}") as c:
            assert c.verify_chain() == []
            return [e.kind for e in c.events()]


def _source(name: str) -> bytes:
    return source_bytes(name, FLEET)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, weed: WeedServer) -> Fleet:
    root = tmp_path_factory.mktemp("retention-e2e")
    f = Fleet(root, weed, weed.new_bucket())
    scenario = root / "scenario.toml"
    scenario.write_text(_scenario())
    done = f.run("run", "--config", str(f.config), "--simulate", str(scenario),
                 "--sim-state", str(root / "sim-state"), "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    return f


def test_day0_ingest_hold_vault_then_day15_sweeps_keep_only_the_held_one(
        fleet: Fleet, weed: WeedServer, tmp_path: Path) -> None:
    day0 = datetime.now(UTC)
    recs = fleet.recordings()
    assert {r.camera_name for r in recs.values()} == {n for _c, n, _s, _d in FLEET}
    assert all(r.status == "deleted_from_camera" and r.stored_on == HOST
               for r in recs.values())
    held = recs[HELD]

    # --- day 0: one recording on hold, everything to the vault ---------------------------
    hold = fleet.dockctl("hold", str(held.id), "--reason", "case 2026-117")
    assert hold.exit_code == 0, hold.output
    assert f"recording {held.id} (NC-1/{HELD}): on legal hold (case 2026-117)" in hold.stdout
    vault = fleet.run("vault", "run", "--config", str(fleet.config), "--once")
    assert vault.returncode == 0, vault.stderr
    recs = fleet.recordings()
    assert all(r.vault_version for r in recs.values())
    assert fleet.client.head(str(recs[HELD].vault_key), str(recs[HELD].vault_version)).legal_hold
    plan = {r["name"]: r for r in fleet.json("retention")["recordings"]}
    assert plan[HELD]["kept_until"] is None and plan[HELD]["why"] == (
        "legal hold: case 2026-117")
    assert all(r["copies"] == [f"local@{HOST}", "vault"] and not r["expired"]
               for r in plan.values())
    day15 = max(datetime.fromisoformat(r["kept_until"]) for r in plan.values()
                if r["kept_until"]) + timedelta(days=1)
    assert day15 - day0 < timedelta(days=15, minutes=5)

    # --- day 15: the local sweep (a dry run first), then the vault's --------------------
    dry = fleet.json("retention", "--sweep", "--dry-run", "--at", _stamp(day15))
    gone = sorted(r.id for n, r in recs.items() if n != HELD)
    assert dry["sweep"] == {"dry_run": True, "deleted": gone, "kept": {}}
    assert all(Path(str(r.store_path)).exists() for r in recs.values())
    swept = fleet.dockctl("retention", "--sweep", "--at", _stamp(day15))
    assert swept.exit_code == 0, swept.output
    assert f"sweep: deleted {len(gone)} local copies: {', '.join(map(str, gone))}" \
        in swept.stdout
    for name, rec in recs.items():
        assert Path(str(rec.store_path)).exists() == (name == HELD), name

    # local copy gone, vault copy still there: export reads it from the vault
    out = tmp_path / "export"
    exported = fleet.dockctl("export", str(recs[EXPORTED].id), "--identity", str(fleet.key),
                             "--out", str(out))
    assert exported.exit_code == 0, exported.output
    (plain,) = [p for p in out.iterdir() if p.name != "manifest.json"]
    assert plain.read_bytes() == _source(EXPORTED)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    report = fleet.json("verify", "--vault", "--download")
    assert report["findings"] == [] and report["vault_checked"] == len(FLEET)

    vault = fleet.run("vault", "run", "--config", str(fleet.config), "--once",
                      "--at", _stamp(day15))
    assert vault.returncode == 0, vault.stderr
    after = fleet.recordings()
    for name, rec in after.items():
        there = fleet.client.head(str(rec.vault_key), str(rec.vault_version)).exists
        assert there == (name == HELD), name
        assert (rec.vault_deleted_at is None) == (name == HELD), name
        assert (rec.local_deleted_at is None) == (name == HELD), name
    listed = weed.admin().list_object_versions(Bucket=fleet.client.settings.bucket)
    assert [v["VersionId"] for v in listed.get("Versions", [])] == [after[HELD].vault_version]
    # the held one: a legal hold beats even the governance bypass
    with pytest.raises(VaultRefused, match="legal hold"):
        fleet.client.delete_version(str(after[HELD].vault_key),
                                    str(after[HELD].vault_version), bypass_governance=True)

    # --- verify stays green and names the tombstones -------------------------------------
    result = fleet.dockctl("verify")
    assert result.exit_code == 0, result.output
    assert f"deleted by retention: {len(gone)} local copies" in result.stdout
    for rec_id in gone:
        name = next(n for n, r in after.items() if r.id == rec_id)
        serial = after[name].camera_serial
        assert (f"recording {rec_id} ({serial}/{name}): deleted by retention on "
                f"{day15:%Y-%m-%d}") in result.stdout
    report = fleet.json("verify", "--vault")
    assert report["findings"] == [] and report["vault_checked"] == 1
    assert len(report["deleted_by_retention"]) == len(gone)
    kinds = fleet.kinds()  # the chain is valid
    assert kinds.count(EventKind.DELETED_BY_RETENTION) == len(gone)
    assert kinds.count(EventKind.VAULT_DELETED) == len(gone)
    assert kinds.count(EventKind.VAULTED) == len(FLEET)

    # nothing is left to export of what is gone everywhere; the held one still exports
    refused = fleet.dockctl("export", str(gone[0]), "--identity", str(fleet.key),
                            "--out", str(tmp_path / "none"))
    assert refused.exit_code != 0 and "none in the vault" in refused.stderr
    kept = fleet.dockctl("export", str(after[HELD].id), "--identity", str(fleet.key),
                         "--out", str(tmp_path / "held"))
    assert kept.exit_code == 0, kept.output
    # and a hold on what no longer exists anywhere is refused, not promised
    late = fleet.dockctl("hold", str(gone[0]), "--reason", "too late")
    assert late.exit_code != 0 and "no stored copy is left to hold" in late.stderr
