"""`dockctl health|cameras|ports|report`: what needs a technician, per camera and per port.

Read only: findings are computed fresh from the catalog (the daemon is the one that stores
them and logs raised/cleared events).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from dockd.cli.common import KEY, SHORT, WRAP, Column, print_json, print_records, reports_errors
from dockd.cli.dockctl_common import config_option, load, open_catalog
from dockd.config import Config
from dockd.health.overview import FleetView, ago, camera_json, fleet_view, port_json

F = TypeVar("F", bound=Callable[..., Any])

_STYLE = {"critical": "bold red", "warning": "yellow", "notice": "cyan", "ok": "green"}

#: the camera and its status are never cut; at a narrow terminal the lesser figures go first
CAMERA_COLUMNS = (
    Column("camera", KEY), Column("last docked", SHORT), Column("charge", SHORT, drop=3),
    Column("health", SHORT, drop=1), Column("cycles", SHORT, drop=7),
    Column("temp", SHORT, drop=4), Column("full charge lasts", SHORT, drop=5),
    Column("clock", SHORT, drop=6), Column("transfers", SHORT, drop=2), Column("status", KEY))
PORT_COLUMNS = (
    Column("port", KEY), Column("attempts", SHORT, drop=3, justify="right"),
    Column("failed", SHORT, justify="right"),
    Column("fail rate", SHORT, drop=2, justify="right"),
    Column("retries", SHORT, drop=4, justify="right"),
    Column("MB/s", SHORT, drop=1, justify="right"), Column("cameras", WRAP),
    Column("status", KEY), Column("note", WRAP))


def _at_option(func: F) -> F:
    return click.option(
        "--at", "at", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
        default=None, help="Judge the fleet as of this UTC time (default: now, or the "
                           "catalog's latest dock when that is later, as in a simulated "
                           "fleet).")(func)


def _view(config: Config, at: datetime | None) -> FleetView:
    """As of --at, else now — or the catalog's latest dock when that is later than this
    host's clock (a simulated fleet: `fleet_clock`), so relative times follow that clock."""
    with open_catalog(config) as catalog:
        return fleet_view(catalog, config,
                          now=at.replace(tzinfo=UTC) if at is not None else None)


def _clock_note(view: FleetView) -> str | None:
    if view.clock != "catalog":
        return None
    return (f"as of {view.now:%Y-%m-%d %H:%M} UTC, the catalog's latest dock: later than "
            "this host's clock (a simulated fleet?); --at sets another time")


def _fmt(value: float | None, unit: str = "", nd: int = 1) -> str:
    return "-" if value is None else f"{round(value, nd) + 0.0:.{nd}f}{unit}"


@click.command()
@config_option
@click.option("--camera", default=None, metavar="SERIAL", help="Only this camera's findings.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_at_option
@reports_errors
def health(config_path: Path, camera: str | None, as_json: bool, at: datetime | None) -> None:
    """The fleet's findings, worst first: severity, subject, what is wrong, what to do."""
    view = _view(load(config_path), at)
    findings = [f for f in view.findings if camera is None or f.camera == camera]
    if as_json:
        print_json({"at": view.now.isoformat(), "clock": view.clock,
                    "findings": [f.as_json() for f in findings],
                    # the store's forecast (with retention: what it counted, or why not filling)
                    "storage": view.storage})
        return
    console = Console(soft_wrap=True, highlight=False)
    note = _clock_note(view)
    if note:
        console.print(Text(note, style="dim"))
    if (camera is None and view.storage and "forecast" in view.storage
            and not any(f.code == "storage_low" for f in findings)):
        # retention counted and the store is fine: say why, so "healthy" is not a surprise
        console.print(Text(f"store: {view.storage['forecast']}", style="dim"))
    if not findings:
        console.print(Text("no findings: " + ("camera " + camera if camera else "the fleet")
                           + " is healthy", style="green"))
        return
    for f in findings:
        line = Text()
        line.append(f"{f.severity.label.upper():<8} ", style=_STYLE[f.severity.label])
        line.append(f"{f.subject_kind} {f.subject}  ", style="bold")
        line.append(f"{f.code}: {f.summary}")
        console.print(line)
        console.print(Text(f"         → {f.advice}"))


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_at_option
@reports_errors
def cameras(config_path: Path, as_json: bool, at: datetime | None) -> None:
    """One line per camera: battery, shift endurance, clock, transfers, worst finding."""
    view = _view(load(config_path), at)
    if as_json:
        print_json([camera_json(c) for c in view.cameras])
        return
    print_records(CAMERA_COLUMNS, [[
        Text(c.serial), ago(c.days_since_docked),
        _fmt(c.soc_percent, "%", 0), _fmt(c.soh_percent, "%", 0), _fmt(c.cycle_count, "", 0),
        _fmt(c.temperature_c, " °C", 0), _fmt(c.predicted_runtime_h, " h"),
        _fmt(c.clock_offset_s, " s", 0), f"{c.failed}/{c.attempts} failed",
        Text(c.worst, style=_STYLE[c.worst])] for c in view.cameras])


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_at_option
@reports_errors
def ports(config_path: Path, as_json: bool, at: datetime | None) -> None:
    """One line per dock port: transfers, failures, retries, throughput, cameras seen."""
    view = _view(load(config_path), at)
    if as_json:
        print_json([port_json(p) for p in view.ports])
        return
    rows: list[list[str | Text]] = []
    for p in view.ports:
        note = ("failures follow " + ", ".join(p.failures_follow) + ", not this port"
                if p.failures_follow else "")
        rows.append([Text(p.port), str(p.attempts), str(p.failed), f"{p.fail_rate:.0%}",
                     str(p.retries), _fmt(p.mb_s), Text(", ".join(p.cameras)),
                     Text(p.worst, style=_STYLE[p.worst]), Text(note)])
    print_records(PORT_COLUMNS, rows)


@click.command()
@config_option
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Where to write the HTML report.")
@_at_option
@reports_errors
def report(config_path: Path, out: Path, at: datetime | None) -> None:
    """Write a self-contained HTML report (no network needed to open it)."""
    from dockd.health.report import render_report  # noqa: PLC0415

    config = load(config_path)
    view = _view(config, at)
    h = config.health
    html = render_report(view, shift_hours=h.shift_hours, soh_warn=h.soh_warn_percent,
                         soh_critical=h.soh_critical_percent)
    try:
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from exc
    click.echo(f"report written to {out}")
