"""The Prometheus endpoint, scraped over HTTP while a real `dockd run --simulate` is running,
its text parsed with prometheus_client's own parser and checked against the catalog; the
alert rules and the Grafana dashboard checked with Prometheus' own `promtool`."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from helpers_ingest import DOCKD, Env, make_env, recording, scenario_toml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from dockd.catalog.schema import TransferAttempt
from dockd.config import Config, MetricsConfig, parse_config
from dockd.errors import ConfigError
from dockd.metrics import parse_listen

REPO = Path(__file__).resolve().parents[1]
ALERTS = REPO / "config" / "prometheus" / "dockd-alerts.yml"
ALERT_TESTS = REPO / "tests" / "data" / "dockd-alerts.test.yml"
DASHBOARD = REPO / "config" / "grafana" / "dockd-dashboard.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Scrape:
    text: str
    families: dict[str, str]  # name → type
    samples: Samples
    members: dict[str, set[str]]  # family → the names of its samples

    def value(self, name: str, **labels: str) -> float:
        return self.samples[name, tuple(sorted(labels.items()))]

    def by(self, name: str, label: str) -> dict[str, float]:
        return {dict(key)[label]: v for (n, key), v in self.samples.items() if n == name}


def scrape(port: int) -> Scrape:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    families, samples, members = {}, {}, {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        members[family.name] = {s.name for s in family.samples}
        for s in family.samples:
            samples[s.name, tuple(sorted(s.labels.items()))] = s.value
    return Scrape(text, families, samples, members)


SCENARIO = scenario_toml([
    {"serial": "NC-M1", "slot": 1, "recording": [
        recording("A.MP4", 300_000, 1, 0), recording("B.MP4", 200_000, 2, 1)]},
    # stalls once: a timeout, then a clean retry
    {"serial": "NC-M2", "slot": 2, "recording": [recording("C.MP4", 300_000, 3, 2)],
     "fault": [{"kind": "stall", "recording": "C.MP4", "at_byte": 100_000, "times": 1}]},
    # refuses every read: fails every attempt, stays on the camera
    {"serial": "NC-M3", "slot": 3, "recording": [recording("D.MP4", 300_000, 4, 3)],
     "fault": [{"kind": "read_error", "recording": "D.MP4", "at_byte": 100_000,
                "times": "always"}]},
], dock="dock-m")


@dataclass
class Served:
    env: Env
    port: int
    after: Scrape
    vault: Scrape
    log: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = make_env(tmp_path_factory.mktemp("metrics"), scenario_text=SCENARIO,
                   ingest={"max_retries": 2})
    with env.config.open("a") as f:  # port 0: any free one, named by metrics_listening
        f.write('[metrics]\nlisten = "127.0.0.1:0"\n')
    log_path = env.root / "dockd.log"
    # no --once: the daemon keeps serving after the three docks are settled
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [str(DOCKD), "run", "--config", str(env.config), "--simulate", str(env.scenario),
             "--sim-state", str(env.sim_state), "--sim-reset"],
            stdout=out, stderr=subprocess.STDOUT, cwd=env.root)
    try:
        port, sessions = 0, 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not port or sessions < 3):
            assert proc.poll() is None, log_path.read_text()
            events = [json.loads(line) for line in log_path.read_text().splitlines()
                      if line.startswith("{")]
            port = next((int(e["address"].rsplit(":", 1)[1]) for e in events
                         if e.get("event") == "metrics_listening"), 0)
            sessions = sum(1 for e in events if e.get("event") == "dock_session")
            time.sleep(0.05)
        assert port and sessions == 3, log_path.read_text()
        after = scrape(port)
        # the vault service's published state (dockd/vault/service.py) is the backlog
        with sqlite3.connect(env.catalog_path) as db:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                       (f"vault_status:{socket.gethostname()}",
                        json.dumps({"waiting": 7, "state": "ok"})))
        vault = scrape(port)
        yield Served(env, port, after, vault, log_path.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, log_path.read_text()[-3000:]


def test_scrape_agrees_with_the_catalog(served: Served) -> None:
    m = served.after
    with served.env.catalog() as catalog:
        rows = catalog.recordings()
        stored = [r for r in rows if r.status in ("verified", "deleted_from_camera")]
        with catalog.reading() as s:
            attempts = s.execute(select(TransferAttempt)).scalars().all()
            kinds = dict(s.execute(select(TransferAttempt.error_kind, func.count())
                                   .where(TransferAttempt.error_kind.is_not(None))
                                   .group_by(TransferAttempt.error_kind)).all())
        head_seq, _ = catalog.head()
        by_status: dict[str, int] = {}
        for r in rows:
            by_status[str(r.status)] = by_status.get(str(r.status), 0) + 1
        findings = [f.severity for f in catalog.health.findings(active_only=True)]
    assert len(stored) == 3
    assert m.value("dockd_recordings_ingested_total") == len(stored)
    assert m.value("dockd_ingested_bytes_total") == sum(r.size for r in stored) == 800_000
    assert m.value("dockd_transfer_bytes_total") == sum(a.bytes for a in attempts)
    failures = {k: v for k, v in m.by("dockd_transfer_failures_total", "reason").items() if v}
    assert failures == kinds
    assert kinds["timeout"] == 1 and kinds["refused"] == 3  # the stall, then 1 + 2 retries
    assert m.by("dockd_camera_transfer_failures_total", "camera") == {"NC-M2": 1, "NC-M3": 3}
    assert m.value("dockd_transfer_duration_seconds_count") == len(attempts) == 7
    assert m.value("dockd_transfer_duration_seconds_bucket", le="+Inf") == len(attempts)
    # the stalled attempt took the transfer timeout (0.5 s) before it failed
    assert m.value("dockd_transfer_duration_seconds_bucket", le="0.25") < len(attempts)
    assert m.value("dockd_transfer_duration_seconds_sum") >= 0.5
    assert m.by("dockd_recordings", "status") == by_status
    assert m.value("dockd_audit_head_sequence") == head_seq > 0
    sev = m.by("dockd_health_findings", "severity")
    assert {k: v for k, v in sev.items() if v} == {s: findings.count(s) for s in set(findings)}
    assert set(sev) >= {"notice", "warning", "critical"}


def test_live_gauges_and_the_store(served: Served) -> None:
    m = served.after
    assert m.value("dockd_cameras_docked") == 3  # settled, still on the dock
    assert m.value("dockd_transfers_in_flight") == 0
    assert m.value("dockd_watchdog_stalled_workers") == 0
    usage = shutil.disk_usage(served.env.store)
    assert m.value("dockd_store_size_bytes") == usage.total
    assert abs(m.value("dockd_store_free_bytes") - usage.free) < 256 << 20
    # under a day of free-space history there is no fill rate: no forecast, rather than a
    # made-up one
    assert "dockd_store_full_forecast_days" not in m.families
    assert "dockd_vault_backlog_recordings" not in m.families  # no vault here
    assert m.families["process_resident_memory_bytes"] == "gauge"
    assert served.vault.value("dockd_vault_backlog_recordings") == 7


def test_names_follow_prometheus_conventions(served: Served) -> None:
    types = {n: t for n, t in served.after.families.items() if n.startswith("dockd_")}
    for name, kind in types.items():
        assert re.fullmatch(r"dockd_[a-z_]+", name), name
        exposed = served.after.members[name]
        if kind == "counter":
            assert all(s.endswith(("_total", "_created")) for s in exposed), name
        else:
            assert not any(s.endswith("_total") for s in exposed), name
    assert types["dockd_transfer_duration_seconds"] == "histogram"
    # base units only: seconds and bytes, never ms or MiB
    assert not [n for n in types if re.search(r"_(ms|milliseconds|kb|mb|mib|minutes)\b", n)]


def test_the_endpoint_is_off_by_default_and_bad_addresses_are_config_errors(
        tmp_path: Path) -> None:
    assert parse_config("", tmp_path / "d.toml").metrics.listen == ""
    assert parse_listen("127.0.0.1:9847") == ("127.0.0.1", 9847)
    assert parse_listen("[::1]:9847") == ("::1", 9847)
    for bad in ("9847", "localhost", "127.0.0.1:http", "127.0.0.1:70000", ":9847"):
        with pytest.raises(ConfigError, match=r"metrics\.listen"):
            parse_config(f'[metrics]\nlisten = "{bad}"\n', tmp_path / "d.toml")


# --- alert rules and the dashboard, with Prometheus' own tool --------------------------------


@needs_promtool
def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([PROMTOOL, "test", "rules", str(ALERT_TESTS)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    text = ALERTS.read_text()
    for alert in ("DockdCameraFailingRepeatedly", "DockdStoreFilling", "DockdWatchdogWithheld"):
        assert f"alert: {alert}" in text and f"alertname: {alert}" in ALERT_TESTS.read_text()


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and all(p["targets"] and p["gridPos"] for p in
                                             dash["panels"])
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


@needs_promtool
def test_every_dashboard_query_parses_with_promtool(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    # promtool parses PromQL in rule files: one recording rule per panel query
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}",
         "expr": expr.replace("$instance", ".*").replace("$__rate_interval", "5m")}
        for i, expr in enumerate(dashboard_exprs())]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_and_alerts_use_only_metrics_dockd_serves(served: Served) -> None:
    served_names = {name for name, _ in served.vault.samples}
    used = set()
    for expr in [*dashboard_exprs(), ALERTS.read_text()]:
        used |= set(re.findall(r"\b(dockd_[a-z_]+)", expr))
    assert used, "no dockd metric referenced"
    assert used <= served_names | {"dockd_store_full_forecast_days"}, used - served_names


def test_the_example_config_and_the_docs_show_the_metrics(served: Served) -> None:
    example = tomllib.loads((REPO / "config" / "dockd.toml").read_text())
    assert example["metrics"] == {f.name: getattr(MetricsConfig(), f.name)
                                  for f in fields(MetricsConfig)}
    assert Config().metrics == MetricsConfig(**example["metrics"])
    assert "`metrics.listen`" in (REPO / "docs" / "configuration.md").read_text()
    ops = (REPO / "docs" / "operations.md").read_text()
    for name in [*served.vault.families, "dockd_store_full_forecast_days"]:
        if name.startswith("dockd_"):  # every metric dockd serves has its row
            shown = f"`{name}_total`" if served.vault.families.get(name) == "counter" else \
                f"`{name}`"
            assert shown in ops, name
    for path in ("config/grafana/dockd-dashboard.json", "config/prometheus/dockd-alerts.yml",
                 "promtool check rules"):
        assert path in ops, path
