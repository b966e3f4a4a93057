"""`dockctl audit`: the custody trail (hash-chained audit events) and whether the chain holds.

Events are streamed a page at a time (JSON included): memory does not grow with the trail.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from dockd.cli.common import reports_errors
from dockd.cli.dockctl_common import config_option, load, open_catalog
from dockd.errors import VerifyFailed
from dockd.verify import chain_json, event_json, iter_events


@click.command()
@config_option
@click.option("--camera", default=None, metavar="SERIAL", help="Only this camera's events.")
@click.option("--recording", default=None, type=int, metavar="ID",
              help="Only this recording's events.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def audit(config_path: Path, camera: str | None, recording: int | None, as_json: bool) -> None:
    """Show the custody trail and check the whole audit chain (exit 7 when it is broken)."""
    with open_catalog(load(config_path)) as catalog:
        if recording is not None:
            catalog.recording(recording)  # an unknown id is an error, not an empty trail
        problems = catalog.verify_chain()
        bad = {p.seq for p in problems if p.seq is not None}
        events = iter_events(catalog, camera=camera, recording=recording)
        if as_json:
            click.echo('{"chain": ' + json.dumps(chain_json(problems)) + ', "events": [')
            for n, e in enumerate(events):
                click.echo(("  " if n == 0 else ", ") + json.dumps(event_json(e)))
            click.echo("]}")
        else:
            console = Console(soft_wrap=True, highlight=False)
            for e in events:
                # Text(): details hold device-given names; never let them be read as markup
                console.print(Text(
                    f"{e.seq:>6} {e.at:%Y-%m-%d %H:%M:%S}Z {e.kind:<19} {e.actor:<8} "
                    f"{e.camera_serial or '-':<12} rec={e.recording_id or '-'} "
                    f"{e.hash[:12]} {'BAD ' if e.seq in bad else ''}{e.details}"))
            console.print(Text("audit chain: ok" if not problems else
                               f"audit chain: {len(problems)} problems"))
            for p in problems:
                console.print(Text(f"FAIL {p.message}"))
    if problems:
        raise VerifyFailed("audit chain does not verify: " + "; ".join(p.message for p in problems))
