"""`dockd vault run`: the vault service (systemd unit dockd-vault.service, docs/vault.md)."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
import structlog

from dockd.cli.common import reports_errors
from dockd.errors import ConfigError, DockdError

if TYPE_CHECKING:
    from dockd.catalog import Catalog
    from dockd.config import Config

log = structlog.get_logger(__name__)


@click.group()
def vault() -> None:
    """The S3 Object Lock vault: copies evidence off the dock PC (docs/vault.md)."""


@vault.command("run")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True,
                                                          dir_okay=False),
              default=None, help="Config file (default /etc/dockd/dockd.toml if present).")
@click.option("--once", is_flag=True,
              help="One pass over this host's recordings, then exit: 0 when nothing waits, "
                   "9 when the vault failed, 6 when recordings still wait.")
@click.option("--at", "at", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              default=None,
              help="Act as if it were this UTC date (simulated catalogs only: retention runs "
                   "ahead of the vault's clock, so a GOVERNANCE lock is bypassed).")
@reports_errors
def run_vault(config_path: Path | None, once: bool, at: datetime | None) -> None:
    """Upload every verified local file of this host, mirror legal holds and retention onto
    the vault's objects, and delete vault versions whose retention and lock have ended."""
    from dockd.flags import SignalFlags  # noqa: PLC0415

    signals = SignalFlags().install()  # before the heavy imports: a stop is never lost
    from dockd.catalog import Catalog  # noqa: PLC0415
    from dockd.config import load_config  # noqa: PLC0415
    from dockd.logs import configure_logging  # noqa: PLC0415
    from dockd.retention import mode_allows_time_travel  # noqa: PLC0415
    from dockd.sdnotify import Heartbeat, Liveness, Notifier  # noqa: PLC0415
    from dockd.vault import VaultClient, VaultError  # noqa: PLC0415
    from dockd.vault.service import VaultService  # noqa: PLC0415

    config = load_config(config_path)
    if config.vault is None:
        raise ConfigError(config.source or "config", "[vault]",
                          "missing: the vault service needs a [vault] section")
    configure_logging(config.log.format, config.log.level, stream=sys.stderr)
    catalog = Catalog.open(config.catalog.url, host=config.host_id, actor="dockd-vault")
    notifier = Notifier()
    try:
        now = None
        bypass = False
        if at is not None:
            if not mode_allows_time_travel(catalog):
                raise ConfigError(config.source or "config", "--at",
                                  "only a simulated catalog may run ahead of the clock")
            when = at.replace(tzinfo=UTC)
            now = lambda: when  # noqa: E731
            bypass = config.vault.lock_mode == "GOVERNANCE"
        client = VaultClient(config.vault)
        try:
            bucket = client.check_bucket(_min_retention(config))
        except VaultError as exc:
            _record(catalog, config.host_id, exc)
            raise
        log.info("vault_started", endpoint=config.vault.endpoint, bucket=config.vault.bucket,
                 lock_mode=config.vault.lock_mode, bucket_default_mode=bucket.default_mode,
                 host=config.host_id, at=at.isoformat() if at else None)
        service = VaultService(config, catalog, client, now=now, bypass_governance=bypass)
        liveness = Liveness()
        heartbeat = Heartbeat(notifier, liveness)  # READY, then WATCHDOG=1 while it beats

        def beat() -> None:
            liveness.beat("vault")
            heartbeat()

        cycle = service.run(signals.stop, once=once, beat=beat)
        notifier.stopping()
        log.info("vault_stopped", waiting=cycle.waiting, error=cycle.error)
    finally:
        notifier.close()
        catalog.close()
    if once and cycle.error:
        sys.exit(9)
    if once and cycle.waiting:
        sys.exit(6)


def _min_retention(config: Config) -> timedelta | None:
    """The policy's default retention: a bucket whose default is shorter is refused."""
    days = config.retention.default_days
    return timedelta(days=float(days)) if days else None


def _record(catalog: Catalog, host: str, exc: DockdError) -> None:
    """The refusal where `dockctl status` reads the service's state."""
    from dockd.vault.state import record_status  # noqa: PLC0415

    with contextlib.suppress(DockdError):  # the refusal itself is what matters
        record_status(catalog, host, at=datetime.now(UTC), waiting=None,
                      error=f"{getattr(exc, 'kind', 'vault')}: {exc}")
