"""`dockctl status` reads the daemon's state from the catalog; a killed daemon leaves no ghosts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from dockd.catalog import Catalog
from dockd.catalog.lease import LeaseOwner
from dockd.catalog.live import close_stale, live_status, report_progress
from dockd.cli.status_cmd import status
from dockd.model import CameraIdentity, RecordingInfo

NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


def _setup(tmp_path: Path) -> tuple[Catalog, int, int]:
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    ident = CameraIdentity("NC-1", "BC-300", "3.2.1", "NetCo", NOW)
    catalog.upsert_camera(ident)
    sess = catalog.start_session("NC-1", dock="dock-a", slot=3)
    info = RecordingInfo("a.MP4", 1000, NOW, 10.0, 0.0, hashlib.sha256(b"x").digest())
    rec = catalog.recording_for("NC-1", info)
    owner = LeaseOwner.here(catalog.host, "killed")  # a session of a daemon since killed
    catalog.take_lease(rec.id, owner)
    att = catalog.begin_attempt(rec.id, owner=owner, session_id=sess.id, offset_from=200)
    return catalog, sess.id, att.id


def test_in_flight_progress_and_docked_cameras_are_visible(tmp_path: Path) -> None:
    catalog, _, attempt = _setup(tmp_path)
    report_progress(catalog, attempt, 300)
    live = live_status(catalog)
    assert [(d.serial, d.dock, d.slot) for d in live.docked] == [("NC-1", "dock-a", 3)]
    [flight] = live.in_flight
    assert (flight.recording, flight.offset_from, flight.bytes, flight.size) == (
        "a.MP4", 200, 300, 1000)
    assert live.recordings_by_status == {"transferring": 1}
    catalog.close()


def test_status_command_reads_the_catalog(tmp_path: Path) -> None:
    catalog, _, attempt = _setup(tmp_path)
    report_progress(catalog, attempt, 300)
    catalog.close()
    config = tmp_path / "dockd.toml"
    config.write_text(f'[catalog]\nurl = "sqlite:///{tmp_path / "catalog.sqlite"}"\n')
    result = CliRunner().invoke(status, ["--config", str(config)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "NC-1" in result.output
    assert "a.MP4" in result.output
    assert "50" in result.output  # (200 + 300) / 1000


def test_close_stale_ends_what_a_killed_daemon_left_open(tmp_path: Path) -> None:
    catalog, _, attempt = _setup(tmp_path)
    report_progress(catalog, attempt, 300)
    assert close_stale(catalog) == (1, 1)
    live = live_status(catalog)
    assert live.docked == [] and live.in_flight == []
    [err] = live.recent_errors
    assert err.kind == "interrupted"
    [att] = catalog.attempts(catalog.recordings()[0].id)
    assert att.bytes == 300  # progress that was made stays on record
    assert catalog.sessions()[0].outcome == "daemon_restarted"
    assert catalog.verify_chain() == []
    assert close_stale(catalog) == (0, 0)
    catalog.close()
