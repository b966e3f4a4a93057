"""`dockctl recordings`: what the catalog knows, one row per recording."""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from dockd.cli.common import KEY, SHORT, WRAP, Column, print_json, print_records, reports_errors
from dockd.cli.dockctl_common import config_option, load, open_catalog
from dockd.export import recording_json

#: what identifies a recording (id, camera, name, status) is never cut; at a narrow terminal
#: the store path goes first, then the start time, then the size
COLUMNS = (Column("id", SHORT, justify="right"), Column("camera", KEY),
           Column("name", KEY), Column("size", SHORT, drop=1, justify="right"),
           Column("started", SHORT, drop=2), Column("status", KEY),
           Column("failure", WRAP, min_wrap=16), Column("store path", WRAP, drop=3, min_wrap=40))


@click.command()
@config_option
@click.option("--camera", default=None, metavar="SERIAL", help="Only this camera's recordings.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def recordings(config_path: Path, camera: str | None, as_json: bool) -> None:
    """List recordings: id, camera, name, size, started, status, failure reason, store path.

    A camera whose last dock could not read its listing at all gets a line
    "SERIAL: nothing listed: REASON" (its footage stays on it)."""
    with open_catalog(load(config_path)) as catalog:
        rows = catalog.recordings(camera)
        refused = catalog.refusals()
    # a camera whose listing its last dock could not read: say so, not "no recordings"
    unlisted = {serial: r.listing for serial, r in refused.items()
                if r.listing and (camera is None or serial == camera)}
    if as_json:
        print_json([{**recording_json(r), "failure_reason": r.failure_reason,
                     "attempts": r.attempts} for r in rows])
        for serial, why in sorted(unlisted.items()):  # beside the list, for a person
            click.echo(f"{serial}: nothing listed: {why}", err=True)
        return
    cells = [[Text(v) for v in (  # Text(): names come from devices, never read as markup
        str(r.id), r.camera_serial, r.camera_name, f"{r.size:,}",
        r.started.strftime("%Y-%m-%d %H:%M:%SZ"), str(r.status), r.failure_reason or "",
        r.store_path or "")] for r in rows]
    if rows:
        print_records(COLUMNS, cells)
    for serial, why in sorted(unlisted.items()):
        click.echo(f"{serial}: nothing listed: {why}")
    if not rows and not unlisted:
        click.echo("no recordings" + (f" for camera {camera}" if camera else ""), err=True)
