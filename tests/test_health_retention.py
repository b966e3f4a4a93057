"""The health storage forecast counts retention (issue 12): a store that fills in ten days at
its current rate, but whose 14-day retention deletes each day's footage before it would fill,
raises no `storage_low` — and says why — while the same store without retention still warns.

Real SQLite catalogs with real files (tests/retention_env.py) and real captures of the
store's free space; the judgement runs as the daemon and dockctl run it (`evaluate`,
`fleet_view`, `dockctl health`, the report, the metrics' forecast).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from retention_env import DAY, HOST, Store, make_store

from dockd.cli.health_cmd import health
from dockd.config import RetentionConfig
from dockd.crypto.keys import generate_identity
from dockd.health.findings import Severity, evaluate, read_fleet, storage_outlook
from dockd.health.overview import fleet_view
from dockd.health.report import render_report
from dockd.metrics import DockdCollector
from dockd.retention import forecast_free_space, storage_forecast

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
#: the store's size and each day's ingest, in bytes (small: the files are real)
TOTAL, PER_DAY = 1_000_000, 10_000
#: ten days of history: the store was filled 10 000 bytes a day from 200 000 free
DAYS = 10
NOW = T0 + DAYS * DAY


def _filling_store(tmp_path: Path, *, free_at_end: int = 100_000, days: float = 14.0
                   ) -> Store:
    """One recording of PER_DAY bytes a day for DAYS days, and a storage reading at each
    dock: free space falls PER_DAY a day to `free_at_end`."""
    store = make_store(tmp_path, start=T0, days=days)
    for d in range(DAYS + 1):
        store.clock.now = T0 + d * DAY
        if d < DAYS:
            store.add(f"R{d}.MP4", size=PER_DAY)
        store.catalog.health.record_capture(
            "NC-1", session_id=None, at=store.clock.now, clock_offset_s=0.0,
            storage=(TOTAL, free_at_end + (DAYS - d) * PER_DAY))
    return store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = _filling_store(tmp_path)
    yield s
    s.catalog.close()


def _storage(store: Store, retention: RetentionConfig | None) -> list:
    found = evaluate(store.catalog, store.config.health, now=NOW, store=str(store.root),
                     retention=retention)
    return [f for f in found if f.code == "storage_low"]


def test_without_retention_the_filling_store_warns(store: Store) -> None:
    for retention in (None, RetentionConfig(default_days=0.0)):
        [low] = _storage(store, retention)
        assert low.severity is Severity.WARNING
        assert low.evidence["days_left"] == pytest.approx(10.0)
        assert low.summary == "evidence store 10.0% free: 10.0 days left at the current rate"
        assert "retention_days" not in low.evidence


def test_a_14_day_retention_steadies_the_store_below_capacity(store: Store) -> None:
    policy = store.config.retention
    assert _storage(store, policy) == []
    # why: the outlook the views and `dockctl health --json` show
    data = read_fleet(store.catalog, now=NOW, retention=policy)
    assert data.expiring == [(T0 + (d + 14) * DAY, PER_DAY) for d in range(DAYS)]
    o = data.storage()
    assert o is not None
    assert o["days_left"] is None and o["days_left_without_retention"] == pytest.approx(10.0)
    assert o["retention_days"] == 14.0
    assert o["freed_by_retention_bytes"] == DAYS * PER_DAY
    assert o["steady_bytes"] == 14 * PER_DAY < TOTAL
    assert o["forecast"] == "steady at 140.0 kB with 14-day retention: not filling"


def test_retention_that_frees_too_late_still_warns_and_says_it_counted(tmp_path: Path
                                                                       ) -> None:
    # 30 000 bytes free: full in 3 days, before the first copy expires (day 4)
    store = _filling_store(tmp_path, free_at_end=30_000)
    [low] = _storage(store, store.config.retention)
    assert low.severity is Severity.WARNING  # 3.0 is not below storage_critical_days
    assert low.summary == ("evidence store 3.0% free: 3.0 days left at the current rate, "
                           "counting retention")
    ev = low.evidence
    assert ev["retention_days"] == 14.0 and ev["freed_by_retention_bytes"] == DAYS * PER_DAY
    assert ev["days_left_without_retention"] == pytest.approx(3.0)
    store.catalog.close()


def test_a_longer_retention_fills_later_than_the_plain_rate(tmp_path: Path) -> None:
    # 60 days kept: the stored copies come back from day 50 on, after the store is full at
    # day 10; shorter: 7 days kept, every copy is gone within a week and the store steadies
    store = _filling_store(tmp_path, days=60.0)
    [low] = _storage(store, store.config.retention)
    assert low.evidence["days_left"] == pytest.approx(10.0)
    assert low.summary.endswith("10.0 days left at the current rate, counting retention")
    assert _storage(store, RetentionConfig(default_days=7.0)) == []
    store.catalog.close()


def test_held_copies_and_other_hosts_copies_free_nothing_here(store: Store,
                                                               tmp_path: Path) -> None:
    policy = store.config.retention
    store.catalog.set_hold(store.ids["R0.MP4"], True, reason="case 12", actor="dockctl:ann")
    other = make_store(tmp_path, start=NOW, host="dock-b")  # the same catalog, another host
    other.add("B.MP4", size=PER_DAY, serial="NC-2")
    expiring = read_fleet(store.catalog, now=NOW, retention=policy).expiring
    assert len(expiring) == DAYS - 1
    assert (T0 + 14 * DAY, PER_DAY) not in expiring  # R0 is held
    assert all(until < NOW + 14 * DAY for until, _ in expiring)  # B.MP4 is dock-b's
    other.catalog.close()


def test_the_walk_is_the_one_storage_forecast_uses(store: Store) -> None:
    policy = store.config.retention
    data = read_fleet(store.catalog, now=NOW, retention=policy)
    plain = forecast_free_space(free_bytes=30_000, bytes_per_day=PER_DAY, now=NOW,
                                expiring=data.expiring, steady_days=policy.default_days)
    assert plain == storage_forecast(store.catalog, store.config, now=NOW, free_bytes=30_000,
                                     bytes_per_day=PER_DAY)
    assert plain["days_left"] == pytest.approx(3.0)
    # no retention: the outlook is the plain one, with no retention keys at all
    o = storage_outlook(data.recent_captures)
    assert o is not None and "forecast" not in o and o["days_left"] == pytest.approx(10.0)


# --- what dockctl, the report and the metrics say --------------------------------------------


def _config_file(store: Store, days: float) -> Path:
    _, recipient = generate_identity()
    path = store.root.parent / "dockd.toml"
    path.write_text(
        f"[storage]\npath = {json.dumps(str(store.root))}\nmin_free_mib = 0\n"
        f"[catalog]\nurl = {json.dumps(str(store.catalog.engine.url))}\n"
        f"[encryption]\nrecipients = [{json.dumps(recipient)}]\n"
        f'[host]\nid = "{HOST}"\n'
        f"[retention]\ndefault_days = {days}\n")
    return path


def _health(config: Path, *args: str) -> str:
    result = CliRunner().invoke(health, ["--config", str(config), "--at",
                                         NOW.strftime("%Y-%m-%dT%H:%M:%S"), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_dockctl_health_says_why_the_store_does_not_warn(store: Store) -> None:
    config = _config_file(store, 14)
    text = _health(config)
    assert "storage_low" not in text
    assert "store: steady at 140.0 kB with 14-day retention: not filling" in text
    out = json.loads(_health(config, "--json"))
    assert not [f for f in out["findings"] if f["code"] == "storage_low"]
    assert out["storage"]["retention_days"] == 14.0 and out["storage"]["days_left"] is None
    assert out["storage"]["forecast"].endswith("not filling")

    off = _config_file(store, 0)
    text = _health(off)
    assert "storage_low: evidence store 10.0% free: 10.0 days left at the current rate" in text
    assert "counting retention" not in text
    low = [f for f in json.loads(_health(off, "--json"))["findings"]
           if f["code"] == "storage_low"]
    assert low and low[0]["severity"] == "warning"


def test_the_report_tile_and_the_metrics_gauge_count_retention(store: Store) -> None:
    html = render_report(fleet_view(store.catalog, store.config, now=NOW))
    assert "<b>not filling</b><span>steady at 140.0 kB with 14-day retention</span>" in html
    plain = store.with_retention(default_days=0.0)
    html = render_report(fleet_view(store.catalog, plain, now=NOW))
    assert "<b>10 d</b><span>until store full</span>" in html

    # the gauge: present while it fills (no retention), absent once retention steadies it
    store.clock.now = NOW
    for days, expected in ((0.0, 10.0), (60.0, 10.0), (14.0, None)):
        config = store.with_retention(default_days=days)
        gauges = {m.name: m.samples[0].value
                  for m in DockdCollector(store.catalog, config).collect() if m.samples}
        assert gauges.get("dockd_store_full_forecast_days") == (
            pytest.approx(expected) if expected is not None else None), days
