"""The Prometheus endpoint IT departments scrape (`[metrics] listen`, off by default).

Everything comes from what dockd already records, read when Prometheus scrapes:

- transfer attempts this host finished since the daemon started (the catalog's
  `transfer_attempts`, followed by a cursor): counters of recordings and bytes ingested,
  failures by reason (and per camera, host-side reasons left out), and the duration histogram.
  A counter starts at 0 with the process, as Prometheus expects of a counter; `rate()` and
  `increase()` take restarts in their stride;
- the catalog's present state: recordings by status, open dock sessions and transfers,
  health findings by severity, the audit head, the store's free-space forecast, the vault's
  backlog (the `vault_status:<host>` setting the vault service writes);
- the process: cameras docked and workers the watchdog sees stalled (callables the daemon
  hands in), and prometheus_client's standard `process_*` metrics.

Reading at scrape time keeps the core free of metric calls: a transfer is counted the same way
whatever the log level, and the numbers agree with `dockctl status` and the catalog by
construction (tests/test_metrics.py checks them against it). Names follow Prometheus
conventions: `dockd_` prefix, base units (bytes, seconds), `_total` on counters.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from dockd.catalog import Catalog
from dockd.catalog.schema import Dock, DockSession, Port, Recording, TransferAttempt
from dockd.config import Config
from dockd.errors import ConfigError, DockdError

log = structlog.get_logger(__name__)

#: transfer duration buckets, seconds: a short clip over USB 2.0 takes well under a second,
#: a 2 GiB one about a minute, a stalled one is cut by the timeout and retries
DURATION_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
#: failure reasons (`error_kind` of an attempt) shown at 0 before the first one happens, so
#: an alert on `increase(...)` has a series to look at from the start
KNOWN_REASONS = ("timeout", "protocol", "integrity", "refused", "gone", "device",
                 "interrupted", "store_full", "storage")
#: failures caused by the dock PC, not the camera: never counted against a camera
HOST_SIDE = frozenset({"store_full", "storage", "interrupted"})
SEVERITIES = ("notice", "warning", "critical")
#: free-space history the store forecast is drawn from (as the health findings do)
FORECAST_HISTORY = timedelta(days=30)


def parse_listen(text: str, source: object = None) -> tuple[str, int]:
    """`"HOST:PORT"` (IPv6 as `"[::1]:PORT"`; port 0 = any free one, which the
    `metrics_listening` line names) → (host, port); ConfigError naming the key."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(source, "metrics.listen",
                          f'must be "HOST:PORT", e.g. "127.0.0.1:9847" (got {text!r})')
    return host, int(port)


@dataclass
class _Finished:
    """What this host's finished attempts add up to since the daemon started."""

    recordings: int = 0
    ingested_bytes: int = 0
    transfer_bytes: int = 0
    failures: Tally[str] = field(default_factory=Tally)
    camera_failures: Tally[str] = field(default_factory=Tally)
    buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    count: int = 0
    seconds: float = 0.0

    def add(self, seconds: float, moved: int, size: int, error_kind: str | None,
            serial: str) -> None:
        self.transfer_bytes += moved
        self.count += 1
        self.seconds += seconds
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1
        if error_kind is None:
            self.recordings += 1
            self.ingested_bytes += size
            return
        self.failures[error_kind] += 1
        if error_kind not in HOST_SIDE:
            self.camera_failures[serial] += 1


class DockdCollector(Collector):
    """Reads the catalog (and the daemon's callables) at each scrape."""

    def __init__(self, catalog: Catalog, config: Config, *,
                 docked: Callable[[], int] | None = None,
                 stalled_workers: Callable[[], int] | None = None) -> None:
        self.catalog = catalog
        self.config = config
        self.docked = docked
        self.stalled_workers = stalled_workers
        self._lock = threading.Lock()  # scrapes may come in parallel: one at a time
        self._done = _Finished()
        # follow attempts past the newest one at start: those before belong to earlier runs
        with catalog.reading() as s:
            self._floor = int(s.scalar(select(func.max(TransferAttempt.id))) or 0)
        self._seen: set[int] = set()

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no collect() at registration: the catalog is read per scrape only

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            try:
                metrics = self._metrics()
            except (DockdError, OSError) as exc:  # a scrape never takes the daemon down
                log.warning("metrics_scrape_failed", error=str(exc))
                metrics = []
        yield from metrics

    # --- reading ---------------------------------------------------------------------------

    def _mine(self, query: Any) -> Any:
        """Only this dock host's sessions (a catalog may be shared by several hosts)."""
        return (query.outerjoin(DockSession, TransferAttempt.session_id == DockSession.id)
                .outerjoin(Port, DockSession.port_id == Port.id)
                .outerjoin(Dock, Port.dock_id == Dock.id)
                .where((Dock.host == self.catalog.host) | Dock.host.is_(None)))

    def _follow_attempts(self) -> int:
        """Count attempts finished since the last scrape; return how many are open."""
        with self.catalog.reading() as s:
            rows = s.execute(self._mine(
                select(TransferAttempt.id, TransferAttempt.started_at,
                       TransferAttempt.finished_at, TransferAttempt.bytes,
                       TransferAttempt.error_kind, Recording.size, Recording.camera_serial)
                .join(Recording, TransferAttempt.recording_id == Recording.id))
                .where(TransferAttempt.id > self._floor)).all()
        open_ids = []
        for att_id, started, finished, moved, kind, size, serial in rows:
            if finished is None:
                open_ids.append(att_id)
            elif att_id not in self._seen:
                self._seen.add(att_id)
                seconds = max(0.0, (finished - started).total_seconds())
                self._done.add(seconds, int(moved or 0), int(size), kind, serial)
        # everything at or below the floor is counted; an open attempt holds it back
        top = max((r[0] for r in rows), default=self._floor)
        self._floor = min(open_ids) - 1 if open_ids else top
        self._seen = {i for i in self._seen if i > self._floor}
        return len(open_ids)

    def _metrics(self) -> list[Metric]:
        in_flight = self._follow_attempts()
        done = self._done
        out: list[Metric] = []

        def counter(name: str, doc: str, value: float) -> None:
            out.append(CounterMetricFamily(name, doc, value=value))

        def gauge(name: str, doc: str, value: float, unit: str = "") -> None:
            out.append(GaugeMetricFamily(name, doc, value=value, unit=unit))

        counter("dockd_recordings_ingested", "Recordings stored by this daemon (transfer "
                "attempts that ended with the file durable).", done.recordings)
        counter("dockd_ingested_bytes", "Plaintext bytes of the recordings ingested.",
                done.ingested_bytes)
        counter("dockd_transfer_bytes", "Bytes read from cameras by every finished transfer "
                "attempt, failed ones included.", done.transfer_bytes)
        failures = CounterMetricFamily("dockd_transfer_failures", "Failed transfer attempts "
                                       "by reason (error kind).", labels=["reason"])
        for reason in sorted(set(KNOWN_REASONS) | set(done.failures)):
            failures.add_metric([reason], done.failures[reason])
        out.append(failures)
        per_camera = CounterMetricFamily(
            "dockd_camera_transfer_failures", "Failed transfer attempts by camera serial "
            "(host-side reasons such as store_full left out).", labels=["camera"])
        for serial, n in sorted(done.camera_failures.items()):
            per_camera.add_metric([serial], n)
        out.append(per_camera)
        hist = HistogramMetricFamily("dockd_transfer_duration_seconds",
                                     "Duration of finished transfer attempts.")
        hist.add_metric([], [(repr(b), n) for b, n in zip(DURATION_BUCKETS, done.buckets,
                                                             strict=True)]
                        + [("+Inf", done.count)], done.seconds)
        out.append(hist)
        gauge("dockd_transfers_in_flight", "Transfer attempts of this host now running.",
              in_flight)
        gauge("dockd_cameras_docked", "Cameras on the dock now.",
              self.docked() if self.docked is not None else self._open_sessions())
        if self.stalled_workers is not None:
            gauge("dockd_watchdog_stalled_workers", "Camera workers silent past the watchdog "
                  "interval: while above 0, dockd withholds WATCHDOG=1 and systemd restarts it.",
                  self.stalled_workers())
        out += self._catalog_state()
        out += self._store()
        return out

    def _open_sessions(self) -> int:
        with self.catalog.reading() as s:
            return int(s.scalar(
                select(func.count()).select_from(DockSession)
                .outerjoin(Port, DockSession.port_id == Port.id)
                .outerjoin(Dock, Port.dock_id == Dock.id)
                .where(DockSession.undocked_at.is_(None),
                       (Dock.host == self.catalog.host) | Dock.host.is_(None))) or 0)

    def _catalog_state(self) -> list[Metric]:
        with self.catalog.reading() as s:
            by_status = dict(s.execute(select(Recording.status, func.count())
                                       .group_by(Recording.status)).all())
        recordings = GaugeMetricFamily("dockd_recordings", "Recordings in the catalog by "
                                       "status.", labels=["status"])
        for status, n in sorted(by_status.items()):
            recordings.add_metric([str(status)], n)
        severities = Tally(f.severity for f in self.catalog.health.findings(active_only=True))
        findings = GaugeMetricFamily("dockd_health_findings", "Active health findings by "
                                     "severity (dockctl health).", labels=["severity"])
        for severity in sorted(set(SEVERITIES) | set(severities)):
            findings.add_metric([severity], severities[severity])
        seq, _head = self.catalog.head()
        out: list[Metric] = [
            recordings, findings,
            GaugeMetricFamily("dockd_audit_head_sequence", "Sequence number of the newest "
                              "event of the hash-chained audit trail.", value=seq)]
        backlog = self._vault_backlog()
        if backlog is not None:
            out.append(GaugeMetricFamily("dockd_vault_backlog_recordings", "Recordings "
                                         "waiting to be copied to the vault.", value=backlog))
        return out

    def _vault_backlog(self) -> int | None:
        raw = self.catalog.setting(f"vault_status:{self.catalog.host}")
        if raw is None:
            return None
        try:
            waiting = json.loads(raw).get("waiting")
        except (ValueError, AttributeError):
            return None
        return int(waiting) if isinstance(waiting, int | float) else None

    def _store(self) -> list[Metric]:
        from dockd.health.findings import storage_outlook  # noqa: PLC0415 - one use
        from dockd.retention import expires_anything, expiring_copies  # noqa: PLC0415
        from dockd.store import nearest_existing  # noqa: PLC0415

        out: list[Metric] = []
        try:
            usage = shutil.disk_usage(nearest_existing(Path(self.config.storage.path)))
        except OSError:
            usage = None
        if usage is not None:
            out += [GaugeMetricFamily("dockd_store_free_bytes", "Free bytes on the evidence "
                                      "store's file system.", value=usage.free),
                    GaugeMetricFamily("dockd_store_size_bytes", "Size of the evidence store's "
                                      "file system.", value=usage.total)]
        now = self.catalog.now()
        caps = self.catalog.health.captures(since=now - FORECAST_HISTORY)
        outlook = storage_outlook(caps)
        policy = self.config.retention
        if (outlook is not None and outlook.get("days_left") is not None
                and expires_anything(policy)):
            # retention only frees: worth reading this host's expiring copies when it fills
            outlook = storage_outlook(caps, expiring=expiring_copies(self.catalog, policy),
                                      retention_days=policy.default_days)
        if outlook is not None and outlook.get("days_left") is not None:
            # absent while the store is not filling (or there is less than a day of history)
            out.append(GaugeMetricFamily("dockd_store_full_forecast_days", "Days until the "
                                         "store is full at the fill rate of the last 30 days, "
                                         "counting what retention deletes.",
                                         value=float(outlook["days_left"])))
        return out


class MetricsServer:
    """The HTTP endpoint: started with the daemon when `[metrics] listen` is set."""

    def __init__(self, collector: DockdCollector, listen: str) -> None:
        self.source = collector.config.source
        self.host, self.port = parse_listen(listen, self.source)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        ProcessCollector(registry=self.registry)
        self._server: Any = None

    def start(self) -> None:
        try:
            self._server, _thread = start_http_server(self.port, self.host,
                                                      registry=self.registry)
        except OSError as exc:  # a port in use is the administrator's to fix: say which
            raise ConfigError(self.source, "metrics.listen",
                              f"cannot serve metrics on {self.host}:{self.port}: "
                              f"{exc.strerror or exc}") from None
        self.port = int(self._server.server_address[1])  # port 0 → the one given
        log.info("metrics_listening", address=f"{self.host}:{self.port}", path="/metrics")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def start_metrics(catalog: Catalog, config: Config, **callables: Any) -> MetricsServer | None:
    """The endpoint, serving, or None when `[metrics] listen` is not set."""
    if not config.metrics.listen:
        return None
    server = MetricsServer(DockdCollector(catalog, config, **callables), config.metrics.listen)
    server.start()
    return server
