"""Configuration: defaults → TOML file → command-line flags, validated before anything starts.

Every problem is one ConfigError naming the file and the key (exit code 2).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockd.errors import ConfigError
from dockd.store import nearest_existing

if TYPE_CHECKING:
    from dockd.crypto.keys import X25519Recipient
    from dockd.vault.settings import VaultSettings

DEFAULT_CONFIG_PATH = Path("/etc/dockd/dockd.toml")
DEFAULT_DROPIN_DIR = Path("/etc/dockd/drivers.d")


@dataclass(frozen=True)
class StorageConfig:
    path: Path = Path("/var/lib/dockd/evidence")
    #: refuse to start a new recording when less than this is free
    min_free_mib: int = 256


@dataclass(frozen=True)
class CatalogConfig:
    url: str = "sqlite:////var/lib/dockd/catalog.sqlite"


@dataclass(frozen=True)
class EncryptionConfig:
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class IngestConfig:
    delete_after_ingest: bool = True
    max_retries: int = 3
    max_parallel_cameras: int = 4
    #: how long one USB transfer may take before the camera counts as stalled
    transfer_timeout_s: float = 5.0
    #: read size per transfer from the camera and per hash/encrypt batch
    chunk_kib: int = 512
    #: how often (in bytes) a transfer is made durable so a later attempt can resume
    checkpoint_mib: int = 64
    #: pause before retrying a failed recording in the same dock session
    retry_delay_s: float = 1.0


@dataclass(frozen=True)
class DriversConfig:
    dropin_dir: Path = DEFAULT_DROPIN_DIR


@dataclass(frozen=True)
class LogConfig:
    #: "auto" = JSON when stdout is not a terminal (journald), console otherwise
    format: str = "auto"
    level: str = "info"


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds of the technicians' health findings (docs/health.md explains each)."""

    #: how long a battery must last in service, hours
    shift_hours: float = 10.0
    #: camera clock off by more than this (either way) is set at dock and flagged, seconds
    clock_drift_s: float = 30.0
    #: a camera not docked for longer than this is overdue, days
    overdue_days: float = 3.0
    #: battery temperature at or above this is hot, °C
    hot_battery_c: float = 45.0
    #: temperature rise over one shift above this is abnormal, °C
    temp_rise_c: float = 15.0
    #: state of health (full-charge / design capacity, %) below these is a warning / critical
    soh_warn_percent: float = 80.0
    soh_critical_percent: float = 70.0
    #: state of health falling faster than this per 30 days (percentage points) is a warning
    soh_drop_per_30d: float = 3.0
    #: more charge cycles than this is a warning
    max_cycles: int = 500
    #: docked and charging, yet the charge rose less than this over the shift log's dock part, %
    min_charge_gain_percent: float = 2.0
    #: share of failed transfer attempts at or above which a camera/port pairing is bad
    transfer_fail_rate: float = 0.2
    #: host storage with fewer days left than these at the current rate: warning / critical
    storage_warn_days: float = 14.0
    storage_critical_days: float = 3.0
    #: while a camera stays docked after its ingest, read its battery this often, seconds
    #: (0 = do not watch charging on the dock)
    charge_poll_s: float = 60.0
    #: docked below 95 % and gaining less than min_charge_gain_percent over this long is
    #: "not charging on this dock", minutes
    charge_stall_min: float = 30.0


@dataclass(frozen=True)
class MetricsConfig:
    """The Prometheus endpoint (docs/operations.md, "Metrics"); off while `listen` is empty."""

    #: "HOST:PORT" to serve /metrics on, e.g. "127.0.0.1:9847"; "" = no endpoint
    listen: str = ""


@dataclass(frozen=True)
class HostConfig:
    #: this dock host's name in a catalog several hosts share (events, docks, leases, which
    #: host holds a local copy); empty = the machine's hostname
    id: str = ""


#: a category whose recordings are kept until a person releases them (docs/retention.md)
UNTIL_RELEASED = "until_released"
_HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class RetentionConfig:
    """How long recordings are kept (docs/retention.md); 0 days = forever, no sweeping."""

    default_days: float = 0.0
    #: category → days, or "until_released"
    categories: tuple[tuple[str, float | str], ...] = ()
    #: how often the daemon's sweeper looks for what has expired, hours
    sweep_every_h: float = 1.0

    def days_for(self, category: str | None) -> float | str:
        """Days a recording of `category` is kept (0 = forever), or UNTIL_RELEASED. A
        category no longer configured (renamed, removed, or set on a host whose config
        differs) keeps its recordings for good: a config edit must never expire evidence
        that a person filed as kept, e.g. "until released"."""
        if not category:
            return self.default_days
        return dict(self.categories).get(category, 0.0)


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    encryption: EncryptionConfig = field(default_factory=EncryptionConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    drivers: DriversConfig = field(default_factory=DriversConfig)
    log: LogConfig = field(default_factory=LogConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    host: HostConfig = field(default_factory=HostConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    #: where evidence goes off-site (docs/vault.md); None = no vault
    vault: VaultSettings | None = None
    #: the file it came from (for messages); None = defaults only
    source: Path | None = None

    @property
    def host_id(self) -> str:
        import socket  # noqa: PLC0415

        return self.host.id or socket.gethostname()


_SECTIONS: dict[str, type[Any]] = {
    "storage": StorageConfig,
    "catalog": CatalogConfig,
    "encryption": EncryptionConfig,
    "ingest": IngestConfig,
    "drivers": DriversConfig,
    "log": LogConfig,
    "health": HealthConfig,
    "host": HostConfig,
    "retention": RetentionConfig,
    "metrics": MetricsConfig,
}

_RANGES: dict[str, tuple[float, float]] = {
    "ingest.max_retries": (0, 100),
    "ingest.max_parallel_cameras": (1, 64),
    "ingest.transfer_timeout_s": (0.05, 600),
    "ingest.chunk_kib": (64, 16384),
    "ingest.checkpoint_mib": (1, 4096),
    "ingest.retry_delay_s": (0, 3600),
    "storage.min_free_mib": (0, 1 << 20),
    "health.shift_hours": (0.5, 72),
    "health.clock_drift_s": (0.1, 86400 * 365),
    "health.overdue_days": (0.1, 3650),
    "health.hot_battery_c": (0, 150),
    "health.temp_rise_c": (0.1, 150),
    "health.soh_warn_percent": (0, 100),
    "health.soh_critical_percent": (0, 100),
    "health.soh_drop_per_30d": (0.01, 100),
    "health.max_cycles": (1, 1_000_000),
    "health.min_charge_gain_percent": (0, 100),
    "health.transfer_fail_rate": (0.001, 1),
    "health.storage_warn_days": (0, 3650),
    "health.storage_critical_days": (0, 3650),
    "health.charge_poll_s": (0, 3600),
    "health.charge_stall_min": (0.01, 24 * 60),
    "retention.default_days": (0, 36500),
    "retention.sweep_every_h": (0.01, 24 * 30),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "log.format": ("auto", "json", "console"),
    "log.level": ("debug", "info", "warning", "error"),
}


def _convert(source: str, key: str, default: Any, value: Any, base: Path) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(source, key, "must be true or false")
        return value
    if isinstance(default, int | float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(source, key, "must be a number")
        if isinstance(default, int) and not isinstance(value, int):
            raise ConfigError(source, key, "must be a whole number")
        lo, hi = _RANGES.get(key, (float("-inf"), float("inf")))
        if not lo <= value <= hi:
            raise ConfigError(source, key, f"must be between {lo:g} and {hi:g}")
        return value
    if isinstance(default, Path):
        if not isinstance(value, str) or not value:
            raise ConfigError(source, key, "must be a non-empty path string")
        path = Path(value)
        return path if path.is_absolute() else (base / path)
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(source, key, "must be a list of strings")
        return tuple(value)
    if not isinstance(value, str):
        raise ConfigError(source, key, "must be a string")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(source, key, f"must be one of {', '.join(_CHOICES[key])}")
    return value


def parse_config(text: str, source: Path) -> Config:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, f"not valid TOML: {exc}") from None
    config = Config(source=source)
    base = source.parent.resolve()  # stored paths must not depend on the working directory
    for section, table in doc.items():
        body = table
        if section == "vault":
            if not isinstance(body, dict):
                raise ConfigError(source, section, "must be a table, e.g. [vault]")
            from dockd.vault.settings import parse_vault_settings  # noqa: PLC0415

            config = replace(config, vault=parse_vault_settings(body, str(source)))
            continue
        if section == "retention" and isinstance(table, dict) and "categories" in table:
            body = {k: v for k, v in table.items() if k != "categories"}
            config = replace(config, retention=replace(
                config.retention, categories=_categories(source, table["categories"])))
        cls = _SECTIONS.get(section)
        if cls is None:
            raise ConfigError(source, section, f"unknown section (known: {', '.join(_SECTIONS)})")
        if not isinstance(body, dict):
            raise ConfigError(source, section, "must be a table, e.g. [" + section + "]")
        current = getattr(config, section)
        names = {f.name for f in fields(cls)}
        changes = {}
        for key, value in body.items():
            if key not in names:
                raise ConfigError(source, f"{section}.{key}", "unknown key")
            default = getattr(current, key)
            changes[key] = _convert(str(source), f"{section}.{key}", default, value, base)
        config = replace(config, **{section: replace(current, **changes)})
    _check_host_and_retention(config, source)
    if config.metrics.listen:  # a typo is a config error at load, not a silent no-endpoint
        from dockd.metrics import parse_listen  # noqa: PLC0415

        parse_listen(config.metrics.listen, source)
    return config


def _check_host_and_retention(config: Config, source: Path) -> None:
    # a host id names this host in leases ("host|boot|pid|...") and in every event
    if config.host.id and not _HOST_ID.fullmatch(config.host.id):
        raise ConfigError(source, "host.id", "letters, digits, '.', '_' and '-', at most 64")
    if not 0 <= config.retention.default_days <= 36500:
        raise ConfigError(source, "retention.default_days", "0 (keep for good) to 36500 days")
    if not 0 < config.retention.sweep_every_h <= 8760:
        raise ConfigError(source, "retention.sweep_every_h", "more than 0, at most 8760 hours")


def _categories(source: Path, raw: Any) -> tuple[tuple[str, float | str], ...]:
    """`[retention.categories]`: name = days (a number) or "until_released"."""
    if not isinstance(raw, dict):
        raise ConfigError(source, "retention.categories", "must be a table: "
                          "[retention.categories]")
    out: list[tuple[str, float | str]] = []
    for name, value in raw.items():
        where = f"retention.categories.{name}"
        if not name.replace("_", "").replace("-", "").isalnum() or len(name) > 64:
            raise ConfigError(source, where, "a category is a short name: letters, digits, _ -")
        if value == UNTIL_RELEASED:
            out.append((name, UNTIL_RELEASED))
        elif isinstance(value, int | float) and not isinstance(value, bool) and (
                0 < value <= 36500):
            out.append((name, float(value)))
        else:
            raise ConfigError(source, where, f'must be a number of days (1 to 36500) or '
                              f'"{UNTIL_RELEASED}"')
    return tuple(out)


def load_config(path: Path | None) -> Config:
    """Load and check a config file; None → the default path if it exists, else defaults."""
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return Config()
        path = DEFAULT_CONFIG_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read: {exc}") from None
    return parse_config(text, path)


def check_for_ingest(config: Config) -> list[X25519Recipient]:
    """What `dockd run` needs beyond a well-formed file: recipients (public keys, never an
    identity), a config and store nobody else can write to, and a writable store.
    Returns the parsed recipients."""
    src = config.source or "defaults"
    if not config.encryption.recipients:
        raise ConfigError(src, "encryption.recipients",
                          "no recipients: dockd will not store footage it cannot encrypt")
    from dockd.crypto.keys import (  # noqa: PLC0415 - `probe` needs no crypto
        IDENTITY_HRP,
        parse_recipient,
    )
    from dockd.errors import CryptoError  # noqa: PLC0415

    recipients = []
    for i, text in enumerate(config.encryption.recipients):
        where = f"encryption.recipients[{i}]"
        if text.strip().lower().startswith(IDENTITY_HRP):
            # never echo the value: it is a private key that must not reach a log
            raise ConfigError(src, where, "is a private key (AGE-SECRET-KEY-…), not a "
                              "recipient: put its public key here (age-keygen -y) and keep "
                              "the private key off this machine")
        try:
            recipients.append(parse_recipient(text))
        except CryptoError as exc:  # KeyFormatError says what is wrong with the string
            raise ConfigError(src, where, str(exc)) from None
    if config.source is not None:
        _refuse_loose_mode(config.source, src, None, "config file")
    root = config.storage.path
    if root.exists():
        _refuse_loose_mode(root, src, "storage.path", "store directory")
    probe = nearest_existing(root)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(src, "storage.path", f"{root} is not writable by this user")
    return recipients


def _refuse_loose_mode(path: Path, src: object, where: str | None, what: str) -> None:
    """Whoever can write the config or the store can redirect or replace evidence."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(src, where, f"cannot check {what} {path}: {exc.strerror}") from None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(src, where, f"{what} {path} is writable by group or others "
                          f"(mode {stat.S_IMODE(mode):04o}); run: chmod go-w {path}")


