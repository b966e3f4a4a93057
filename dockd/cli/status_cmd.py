"""`dockctl status`: what the daemon is doing, read from the catalog (works from any shell)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dockd.catalog.live import live_status
from dockd.cli.common import print_json, reports_errors
from dockd.cli.dockctl_common import config_option, load, open_catalog


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def status(config_path: Path, as_json: bool) -> None:
    """Docked cameras, transfers in flight with progress, recent errors."""
    catalog = open_catalog(load(config_path))
    try:
        live = live_status(catalog)
    finally:
        catalog.close()
    if as_json:
        print_json(dataclasses.asdict(live))
        return
    console = Console()
    now = datetime.now(UTC)
    docked = Table(title=f"Docked cameras ({len(live.docked)})")
    for col in ("dock", "slot", "serial", "model", "docked for"):
        docked.add_column(col)
    for d in live.docked:
        docked.add_row(d.dock or "-", str(d.slot or "-"), d.serial, d.model,
                       _ago(now, d.docked_at))
    console.print(docked)
    flight = Table(title=f"Transfers in flight ({len(live.in_flight)})")
    for col in ("serial", "recording", "%", "MB", "MB/s", "running"):
        flight.add_column(col)
    for f in live.in_flight:
        done = f.offset_from + f.bytes
        secs = max((now - f.started_at).total_seconds(), 1e-3)
        flight.add_row(f.serial, f.recording, f"{100 * done / f.size:.0f}" if f.size else "100",
                       f"{done / 1e6:.1f}/{f.size / 1e6:.1f}", f"{f.bytes / secs / 1e6:.1f}",
                       _ago(now, f.started_at))
    console.print(flight)
    errors = Table(title="Recent transfer errors")
    for col in ("when", "serial", "recording", "kind", "message"):
        errors.add_column(col)
    for e in live.recent_errors:
        errors.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S"), e.serial, e.recording, e.kind,
                       e.message)
    console.print(errors)
    if live.notices:
        # whole lines, never cut: a path or a reason is only useful complete. Text(): they
        # hold device-given names; never read them as markup
        console.print("Custody notices (newest first):")
        for n in live.notices:
            console.print(Text(f"  {n.at:%Y-%m-%d %H:%M:%S} {n.serial or '-'} {n.kind}: "
                               f"{n.message}"), soft_wrap=True)
    console.print("Recordings: " + (", ".join(f"{k} {v}" for k, v in
                                              sorted(live.recordings_by_status.items())) or "none"))


def _ago(now: datetime, then: datetime) -> str:
    seconds = int((now - then).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else (
        f"{seconds // 60}m{seconds % 60:02d}s")
