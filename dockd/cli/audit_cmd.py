"""`dockctl audit`: the custody trail (hash-chained audit events) and whether the chain holds.

Events are streamed a page at a time (JSON included): memory does not grow with the trail.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from dockd.catalog.rows import AuditRecord, ChainProblem
from dockd.cli.common import reports_errors
from dockd.cli.dockctl_common import config_option, load, open_catalog
from dockd.errors import VerifyFailed
from dockd.verify import chain_json, event_json, iter_events

#: the control codes rich's Text() strips (bell, backspace, vertical tab, form feed, CR)
_CONTROL = dict.fromkeys((7, 8, 11, 12, 13))


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
        selected = camera is not None or recording is not None
        if selected:
            # a camera's trail, from its index, shown and checked in one read: its events
            # against their hashes and links, then the head; walking the whole chain
            # (minutes on a fleet-year catalog) is `dockctl audit` without a filter, or
            # `dockctl verify`
            trail = catalog.checked_events_of(camera=camera, recording=recording)
            problems: list[ChainProblem] = []  # gathered along the trail, then the tail's
        else:
            problems = catalog.verify_chain()
            bad: dict[int, list[ChainProblem]] = {}
            for p in problems:
                if p.seq is not None:
                    bad.setdefault(p.seq, []).append(p)
            trail = ((e, bad.get(e.seq, [])) for e in iter_events(catalog))
        checked = 0

        def shown(e: AuditRecord, found: list[ChainProblem]) -> AuditRecord:
            nonlocal checked
            checked += 1
            if selected:
                problems.extend(found)
            return e

        if as_json:
            click.echo('{"events": [')
            for n, (e, found) in enumerate(trail):
                click.echo(("  " if n == 0 else ", ") + json.dumps(event_json(shown(e, found))))
        else:
            out = sys.stdout
            for e, found in trail:
                shown(e, found)
                # plain lines, control codes stripped as rich's Text() does (details hold
                # device-given names): rich rendering each line cost 20 of the 30 s a camera's
                # 35,643 events took on a fleet-year catalog (docs/performance.md)
                line = (f"{e.seq:>6} {e.at:%Y-%m-%d %H:%M:%S}Z {e.kind:<19} {e.actor:<8} "
                        f"{e.camera_serial or '-':<12} rec={e.recording_id or '-'} "
                        f"{e.hash[:12]} {'BAD ' if found else ''}{e.details}")
                out.write(line.translate(_CONTROL) + "\n")
            out.flush()
        if selected:
            problems += catalog.tail_problems()
        scope = f" for the {checked} events shown (the whole chain: dockctl audit)" \
            if selected else ""
        if as_json:
            chain = {**chain_json(problems), "scope": "selected" if selected else "whole"}
            click.echo('], "chain": ' + json.dumps(chain) + "}")
        else:
            console = Console(soft_wrap=True, highlight=False)
            console.print(Text(("audit chain: ok" if not problems else
                                f"audit chain: {len(problems)} problems") + scope))
            for p in problems:
                console.print(Text(f"FAIL {p.message}"))
    if problems:
        raise VerifyFailed("audit chain does not verify: " + "; ".join(p.message for p in problems))
