"""`dockctl hold`, `release`, `category` and `retention`: what keeps a recording, and when
it goes (docs/retention.md). Every change is a custody event naming the OS user."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import structlog

from dockd.catalog import Catalog, RecordingRow
from dockd.cli.common import print_json, reports_errors
from dockd.cli.dockctl_common import config_option, load, open_catalog, operator
from dockd.config import Config
from dockd.errors import CatalogError, ConfigError
from dockd.retention import (
    kept_until,
    mode_allows_time_travel,
    plan,
    sweep_local,
    why_kept,
)

IDS = click.argument("ids", nargs=-1, required=True, type=int, metavar="ID...")
#: rows shown by `dockctl retention` without --all (the soonest to go first)
SHOWN = 50


def _label(rec: RecordingRow) -> str:
    return f"recording {rec.id} ({rec.camera_serial}/{rec.camera_name})"


def _still_kept(rec: RecordingRow) -> None:
    """Holding what no longer exists anywhere would promise a copy nobody has."""
    gone_locally = rec.local_deleted_at is not None or rec.stored_sha256 is None
    gone_from_vault = rec.vault_version is None or rec.vault_deleted_at is not None
    if gone_locally and gone_from_vault:
        when = rec.local_deleted_at or rec.vault_deleted_at
        raise CatalogError(f"{_label(rec)}: no stored copy is left to hold"
                           + (f" (deleted by retention on {when:%Y-%m-%d})" if when else ""))


@click.command()
@config_option
@IDS
@click.option("--reason", required=True, help="Why (case number, request): kept in the audit.")
@reports_errors
def hold(config_path: Path, ids: tuple[int, ...], reason: str) -> None:
    """Put recordings ID... on legal hold: kept whatever their retention, here and in the
    vault (dockd-vault sets the object's legal hold)."""
    if not reason.strip():
        raise click.BadParameter("must say why", param_hint="--reason")
    with open_catalog(load(config_path)) as catalog:
        for rec_id in dict.fromkeys(ids):
            _still_kept(catalog.recording(rec_id))
            rec = catalog.set_hold(rec_id, True, reason=reason, actor=operator())
            click.echo(f"{_label(rec)}: on legal hold ({reason})")


@click.command()
@config_option
@IDS
@reports_errors
def release(config_path: Path, ids: tuple[int, ...]) -> None:
    """Release recordings ID... from legal hold: their retention applies again (an expired
    one goes at the next sweep)."""
    config = load(config_path)
    with open_catalog(config) as catalog:
        for rec_id in dict.fromkeys(ids):
            if not catalog.recording(rec_id).legal_hold:
                click.echo(f"recording {rec_id}: was not on hold", err=True)
                continue
            rec = catalog.set_hold(rec_id, False, reason=None, actor=operator())
            until = kept_until(rec, config.retention)
            click.echo(f"{_label(rec)}: released; "
                       + (f"kept until {until:%Y-%m-%d %H:%M}Z" if until else why_kept(
                           rec, config.retention)))


@click.command()
@config_option
@click.argument("name", metavar="CATEGORY")
@IDS
@reports_errors
def category(config_path: Path, name: str, ids: tuple[int, ...]) -> None:
    """File recordings ID... under a retention CATEGORY from [retention.categories]
    ("default" for the default retention)."""
    config = load(config_path)
    known = dict(config.retention.categories)
    if name != "default" and name not in known:
        raise ConfigError(config.source or "config", "retention.categories",
                          f"no category {name!r} (known: default, "
                          + ", ".join(sorted(known)) + ")")
    with open_catalog(config) as catalog:
        for rec_id in dict.fromkeys(ids):
            _still_kept(catalog.recording(rec_id))
            rec = catalog.set_category(rec_id, None if name == "default" else name,
                                       actor=operator())
            click.echo(f"{_label(rec)}: category {name}; {why_kept(rec, config.retention)}")


@click.command()
@config_option
@click.option("--sweep", is_flag=True, help="Delete this host's expired local copies now "
                                            "(the daemon does so every sweep_every_h).")
@click.option("--dry-run", is_flag=True, help="With --sweep: say what would go, delete nothing.")
@click.option("--at", "at", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              default=None, help="As if it were this UTC date (simulated catalogs only).")
@click.option("--all", "show_all", is_flag=True, help=f"Every row, not the {SHOWN} soonest.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def retention(config_path: Path, sweep: bool, dry_run: bool, at: datetime | None,
              show_all: bool, as_json: bool) -> None:
    """What is kept, why, and when it goes; with --sweep, delete what has expired here."""
    if dry_run and not sweep:
        raise click.BadParameter("needs --sweep", param_hint="--dry-run")
    config = load(config_path)
    with open_catalog(config) as catalog:
        now = _now(catalog, config, at)
        rows = [_row(d.rec, d.until, d.why, now) for d in plan(catalog, config)]
        swept = None
        if sweep:
            with _logs_to_stderr(config):
                swept = sweep_local(catalog, config, now, dry_run=dry_run)
    rows.sort(key=lambda r: (r["kept_until"] is None, r["kept_until"] or "", r["id"]))
    if as_json:
        out: dict[str, Any] = {"now": now.isoformat(), "recordings": rows}
        if swept is not None:
            out["sweep"] = {"dry_run": dry_run, "deleted": swept.deleted,
                            "kept": {str(k): v for k, v in swept.kept.items()}}
        print_json(out)
        return
    _print(rows, now, show_all)
    if swept is not None:
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"sweep: {verb} {len(swept.deleted)} local copies"
                   + (f": {', '.join(map(str, swept.deleted))}" if swept.deleted else ""))
        for rec_id, why in sorted(swept.kept.items()):
            click.echo(f"  recording {rec_id}: expired, kept: {why}")


@contextmanager
def _logs_to_stderr(config: Config) -> Iterator[None]:
    """The sweep's log lines (one per deleted copy: an audit trail) go to stderr while it
    runs: stdout is for the table or the --json document alone."""
    from dockd.logs import configure_logging  # noqa: PLC0415 - only a sweep logs

    saved = structlog.get_config()
    configure_logging(config.log.format, config.log.level, stream=sys.stderr)
    try:
        yield
    finally:
        structlog.configure(**saved)


def _now(catalog: Catalog, config: Config, at: datetime | None) -> datetime:
    if at is None:
        return catalog.now()
    if not mode_allows_time_travel(catalog):
        raise ConfigError(config.source or "config", "--at",
                          "only a simulated catalog may be swept as of another date")
    return at.replace(tzinfo=UTC)


def _row(rec: RecordingRow, until: datetime | None, why: str, now: datetime) -> dict[str, Any]:
    where = []
    if rec.local_deleted_at is None:
        where.append(f"local@{rec.stored_on}" if rec.stored_on else "local")
    if rec.vault_version is not None and rec.vault_deleted_at is None:
        where.append("vault")
    return {"id": rec.id, "camera": rec.camera_serial, "name": rec.camera_name,
            "category": rec.category or "default", "legal_hold": rec.legal_hold,
            "hold_reason": rec.hold_reason,
            "kept_until": until.isoformat() if until else None, "why": why,
            "expired": until is not None and until <= now, "copies": where}


def _print(rows: list[dict[str, Any]], now: datetime, show_all: bool) -> None:
    held = sum(1 for r in rows if r["legal_hold"])
    forever = sum(1 for r in rows if r["kept_until"] is None) - held
    expired = sum(1 for r in rows if r["expired"])
    click.echo(f"{len(rows)} recordings kept as of {now:%Y-%m-%d %H:%M}Z: {held} on legal "
               f"hold, {forever} kept until released, {expired} expired (go at the next "
               "sweep once the rules allow)")
    # one record a line: whole values whatever the terminal's width
    for r in rows if show_all else rows[:SHOWN]:
        until = r["kept_until"][:16].replace("T", " ") + "Z" if r["kept_until"] else "kept"
        mark = "EXPIRED " if r["expired"] else ""
        click.echo(f"{r['id']:>8}  {r['camera']}  {r['name']}  {mark}{until}  "
                   f"[{', '.join(r['copies'])}]  {r['why']}")
    if not show_all and len(rows) > SHOWN:
        click.echo(f"… {len(rows) - SHOWN} more (--all)")
