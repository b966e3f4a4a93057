"""`dockctl status`: what the daemon is doing, read from the catalog (works from any shell)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.text import Text

from dockd.catalog.live import live_status
from dockd.cli.common import KEY, SHORT, WRAP, Column, print_json, print_records, reports_errors
from dockd.cli.dockctl_common import config_option, load, open_catalog
from dockd.health.docked import read_on_dock
from dockd.vault.state import vault_states

#: serials, recording names and error kinds are never cut; free text wraps; at a narrow
#: terminal the lesser numbers go first
DOCKED = (Column("host", SHORT, drop=2), Column("dock", KEY), Column("slot", SHORT),
          Column("serial", KEY), Column("model", SHORT, drop=1), Column("docked for", SHORT))
IN_FLIGHT = (Column("serial", KEY), Column("recording", KEY),
             Column("%", SHORT, justify="right"), Column("MB", SHORT, drop=2, justify="right"),
             Column("MB/s", SHORT, drop=1, justify="right"), Column("running", SHORT, drop=3))
ERRORS = (Column("when", SHORT, drop=1), Column("serial", KEY), Column("recording", KEY),
          Column("kind", KEY), Column("message", WRAP, min_wrap=16))
# --- charge state of cameras that stay docked after ingest (docs/health.md, issue 14) ---
ON_DOCK = (Column("port", KEY), Column("serial", KEY), Column("charge", SHORT),
           Column("mA", SHORT, drop=1, justify="right"), Column("state", KEY),
           Column("docked for", SHORT, drop=2))


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def status(config_path: Path, as_json: bool) -> None:
    """Docked cameras, transfers in flight with progress, recent errors, and the vault's
    state per dock host (backlog, last upload, last error)."""
    config = load(config_path)
    catalog = open_catalog(config)
    try:
        live = live_status(catalog)
        on_dock = read_on_dock(catalog, config.health, now=catalog.now())
        vault = vault_states(catalog, configured=config.vault is not None)
    finally:
        catalog.close()
    if as_json:
        print_json(dataclasses.asdict(live)
                   | {"on_dock": [dataclasses.asdict(d) for d in on_dock]}
                   | {"vault": [dataclasses.asdict(v) for v in vault]})
        return
    now = datetime.now(UTC)
    print_records(DOCKED, [[Text(d.host or ""), Text(d.dock or "-"),
                            str(d.slot or "-"), Text(d.serial), Text(d.model),
                            _ago(now, d.docked_at)] for d in live.docked],
                  title=f"Docked cameras ({len(live.docked)})")
    flight: list[list[str | Text]] = []
    for f in live.in_flight:
        done = f.offset_from + f.bytes
        secs = max((now - f.started_at).total_seconds(), 1e-3)
        flight.append([Text(f.serial), Text(f.recording),
                       f"{100 * done / f.size:.0f}" if f.size else "100",
                       f"{done / 1e6:.1f}/{f.size / 1e6:.1f}", f"{f.bytes / secs / 1e6:.1f}",
                       _ago(now, f.started_at)])
    print_records(IN_FLIGHT, flight, title=f"Transfers in flight ({len(live.in_flight)})")
    if on_dock:
        print_records(ON_DOCK, [[Text(d.port), Text(d.serial),
                                 "-" if d.soc_percent is None else f"{d.soc_percent:.0f}%",
                                 "-" if d.current_ma is None else str(d.current_ma),
                                 Text(d.state), _ago(now, d.since)] for d in on_dock],
                      title=f"Charging on the dock after ingest ({len(on_dock)})")
    print_records(ERRORS, [[e.at.strftime("%Y-%m-%d %H:%M:%S"), Text(e.serial),
                            Text(e.recording), Text(e.kind), Text(e.message)]
                           for e in live.recent_errors], title="Recent transfer errors")
    if live.notices:
        # whole lines, never cut: a path or a reason is only useful complete. Text(): they
        # hold device-given names; never read them as markup
        click.echo("Custody notices (newest first):")
        for n in live.notices:
            click.echo(f"  {n.at:%Y-%m-%d %H:%M:%S} {n.serial or '-'} {n.kind}: {n.message}")
    for v in vault:  # one whole line per dock host: backlog, last upload, last error
        click.echo(v.line())
    click.echo("Recordings: " + (", ".join(f"{k} {v}" for k, v in
                                           sorted(live.recordings_by_status.items())) or "none"))


def _ago(now: datetime, then: datetime) -> str:
    seconds = int((now - then).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else (
        f"{seconds // 60}m{seconds % 60:02d}s")
