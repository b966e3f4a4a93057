"""`dockd`: the daemon (`run`) and the commissioning probe (`probe`)."""

from __future__ import annotations

import queue
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from dockd.cli.common import (
    KEY,
    SHORT,
    WRAP,
    Column,
    plain_output,
    print_json,
    print_records,
    reports_errors,
)
from dockd.config import load_config
from dockd.devices import DeviceOpener
from dockd.events import Action, DeviceEvent
from dockd.logs import configure_logging
from dockd.probe import probe_device
from dockd.registry import DriverRegistry

PATH = click.Path(path_type=Path)
EXISTING = click.Path(path_type=Path, exists=True, dir_okay=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dockd")
def main() -> None:
    """dockd — ingest daemon for body-worn camera docking stations."""


def sim_options(func: Any) -> Any:
    func = click.option("--sim-reset", is_flag=True,
                        help="Start simulated cameras again from the scenario's contents.")(func)
    func = click.option("--sim-state", type=PATH, default=None,
                        help="Where simulated cameras keep their flash (default: beside the "
                             "scenario file).")(func)
    func = click.option("--simulate", "scenario", type=EXISTING, default=None,
                        help="Run against a simulated dock described by this scenario file.")(func)
    return click.option("--config", "config_path", type=EXISTING, default=None,
                        help="Config file (default /etc/dockd/dockd.toml if present).")(func)


@main.command()
@sim_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--timeout", default=5.0, show_default=True, help="Per-transfer timeout, seconds.")
@reports_errors
def probe(config_path: Path | None, scenario: Path | None, sim_state: Path | None,
          sim_reset: bool, as_json: bool, timeout: float) -> None:
    """List docked cameras with driver, slot, identity, battery and recordings (no ingest)."""
    config = load_config(config_path)
    configure_logging("json" if as_json else config.log.format, config.log.level,
                      stream=sys.stderr)
    registry = DriverRegistry.discover()
    events: queue.Queue[DeviceEvent] = queue.Queue()
    sim = None
    if scenario is not None:
        from dockd.simulation import open_simulation  # noqa: PLC0415

        sim = open_simulation(scenario, events.put, state_dir=sim_state, reset=sim_reset,
                              all_at_once=True)
        backend: Any = sim.backend
        sim.dock.start()
        deadline = time.monotonic() + 10
        while sim.dock.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        backend = None
    try:
        opener = DeviceOpener.from_registry(registry, config.drivers.dropin_dir, backend)
        if sim is None:  # what is there now, on every bus the rules name (then stop looking)
            from dockd.daemon import start_watchers  # noqa: PLC0415

            for watcher in start_watchers(opener.matcher, events.put):
                watcher.stop()
        docked: dict[str, Any] = {}
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                break
            if event.action is Action.ADD:
                docked[event.device.key] = event.device
            else:
                docked.pop(event.device.key, None)
        results = [probe_device(opener, ref, timeout_s=timeout)
                   for ref in sorted(docked.values(), key=lambda r: (r.slot, r.port_path))]
    finally:
        if sim is not None:
            sim.close()
    if as_json:
        print_json({"cameras": results})
        return
    _print_probe(results)


#: the serial and the status are never cut; at a narrow terminal firmware, driver, model and
#: battery go, in that order (`--json` has them all)
PROBE_COLUMNS = (Column("slot", SHORT), Column("serial", KEY), Column("driver", SHORT, drop=3),
                 Column("model", SHORT, drop=2), Column("firmware", SHORT, drop=4),
                 Column("battery", SHORT, drop=1), Column("recordings", SHORT),
                 Column("status", WRAP, min_wrap=16))


def _print_probe(results: list[dict[str, Any]]) -> None:
    # names, serials, models and errors come from devices: always Text, never markup
    if not results:
        click.echo("No cameras docked.")
        return
    rows: list[list[str | Text]] = []
    for r in results:
        ident = r.get("identity") or {}
        batt = r.get("battery") or {}
        recs = r.get("recordings")
        refused = r.get("refused") or []
        battery = (f"{batt['soc_percent']:.0f}% {batt['voltage_mv']} mV "
                   f"{batt['temperature_c']:.1f} °C" if batt else "-")
        listed = "-" if recs is None else f"{len(recs)} ({_mib(recs):.1f} MiB)"
        if refused:
            listed += f" + {len(refused)} refused"
        if "error" in r:
            status = Text(r["error"], style="red")
        elif refused:
            status = Text(f"ok, {len(refused)} refused", style="yellow")
        else:
            status = Text("ok")
        rows.append([str(r["slot"]), Text(ident.get("serial", "?")),
                     Text(r.get("driver") or "-"), Text(ident.get("model", "-")),
                     Text(ident.get("firmware", "-")), battery, listed, status])
    console = Console(highlight=False)
    print_records(PROBE_COLUMNS, rows, title="Docked cameras", out=console)
    for r in results:
        for rec in r.get("recordings") or []:
            console.print(Text(f"  slot {r['slot']}  {rec['name']}  {rec['size']} B  "
                               f"started {rec['started']}  sha256 {rec['sha256'][:16]}…"),
                          soft_wrap=plain_output())
        for rec in r.get("refused") or []:
            console.print(Text.assemble(
                f"  slot {r['slot']}  {rec['label']}  {rec['size']} B  "
                f"started {rec['started']}  sha256 {rec['sha256'][:16]}…  ",
                (f"refused: {rec['reason']}", "yellow")), soft_wrap=plain_output())


def _mib(recs: list[dict[str, Any]]) -> float:
    return sum(int(x["size"]) for x in recs) / (1 << 20)


@main.command()
@sim_options
@click.option("--once", is_flag=True,
              help="Exit once every camera docked so far (and every one the scenario will "
                   "still dock) has been processed. Exit 0 only if every listed recording is "
                   "stored and verified, else 6.")
@reports_errors
def run(config_path: Path | None, scenario: Path | None, sim_state: Path | None,
        sim_reset: bool, once: bool) -> None:
    """Ingest every docked camera: verify, encrypt, store, catalog, then delete on the camera.

    A fleet scenario (cameras on several `day`s, e.g. scenarios/fleet-trouble.toml) is played
    day by day on a simulated calendar ending today, then health is judged (docs/simulator.md).
    """
    from dockd.flags import SignalFlags  # noqa: PLC0415 - keeps `--help` fast

    if scenario is not None and _play_fleet(config_path, scenario, sim_state):
        return  # (no signal flags: Ctrl-C simply ends a fleet play)
    signals = SignalFlags().install()  # before the daemon's imports: a stop is never lost
    from dockd.daemon import run_daemon  # noqa: PLC0415

    run_daemon(config_path, scenario=scenario, sim_state=sim_state, sim_reset=sim_reset,
               once=once, signals=signals)


def _play_fleet(config_path: Path | None, scenario: Path, sim_state: Path | None) -> bool:
    """Play a multi-day fleet scenario and say what each day did; False for a one-day one."""
    from datetime import timedelta  # noqa: PLC0415

    from dockd.errors import IncompleteIngest  # noqa: PLC0415
    from dockd.simulation import play_fleet  # noqa: PLC0415

    config = load_config(config_path)
    configure_logging(config.log.format, config.log.level)
    played = play_fleet(scenario, config_path, state_dir=sim_state)
    if played is None:
        return False
    click.echo(f"fleet {scenario}: {len(played.days)} simulated days, "
               f"{played.first:%Y-%m-%d} to {played.last:%Y-%m-%d} (today)")
    not_stored = []
    for day in played.days:
        outcomes: dict[str, int] = {}
        for s in day.sessions:
            outcomes[s.outcome] = outcomes.get(s.outcome, 0) + 1
            if not s.complete:
                not_stored.append(f"day {day.day} {s.serial} slot {s.slot}: {s.summary()}")
        not_stored += [f"day {day.day} {e}" for e in day.errors]
        when = played.first + timedelta(days=day.day)
        click.echo(f"  day {day.day}  {when:%Y-%m-%d}  {len(day.sessions)} docks: "
                   + (", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "none")
                   + (f"; {len(day.errors)} not opened" if day.errors else ""))
    findings = played.days[-1].findings if played.days else []
    by_severity: dict[str, int] = {}
    for f in findings:
        by_severity[f.severity.label] = by_severity.get(f.severity.label, 0) + 1
    click.echo(f"health: {len(findings)} findings"
               + (" (" + ", ".join(f"{n} {k}" for k, n in sorted(by_severity.items())) + ")"
                  if findings else "") + ": dockctl health, dockctl report --out FILE.html")
    if not_stored:
        raise IncompleteIngest("not every recording is stored and verified: "
                               + "; ".join(not_stored))
    return True


def _register() -> None:
    from dockd.cli.vault_cmd import vault  # noqa: PLC0415 - one module per command group

    main.add_command(vault)


_register()
