"""`dockctl verify`: prove the store against the catalog (restic's `check --read-data`)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from dockd.anchors import parse_anchor
from dockd.cli.common import print_json, reports_errors
from dockd.cli.dockctl_common import config_option, load, open_catalog
from dockd.crypto.keys import load_identities
from dockd.errors import VerifyFailed
from dockd.verify import verify_store


@click.command()
@config_option
@click.option("--identity", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="age identity file: also decrypt every file and check its plaintext SHA-256.")
@click.option("--anchor", "anchors", multiple=True, metavar="SEQ:HASH",
              help="An audit head written down elsewhere (a dock_session log line, paper): "
                   "the chain must still hold it. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def verify(config_path: Path, identity: Path | None, anchors: tuple[str, ...],
           as_json: bool) -> None:
    """Check the audit chain (against the store's anchor file and every --anchor), every
    recording row against its custody chain, and every stored file against the chain's
    hashes; find missing, unknown and key files.

    Exits 7 naming every failure; appends `verified_later` for each recording that checks out.
    """
    try:
        given = [parse_anchor(text) for text in anchors]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--anchor") from None
    config = load(config_path)
    identities = load_identities(identity) if identity is not None else None
    with open_catalog(config) as catalog:
        report = verify_store(catalog, config.storage.path, identities, given)
    if as_json:
        print_json(report.to_json())
    else:
        console = Console(soft_wrap=True, highlight=False)
        mode = "stored hash + decrypted plaintext hash" if report.decrypted else "stored hash"
        console.print(Text(f"checked {report.checked} stored recordings ({mode}): "
                           f"{len(report.ok_ids)} ok"))
        console.print(Text("audit chain: " + ("ok" if not report.chain else
                                              f"{len(report.chain)} problems")
                           + f" (checked against {report.anchors} witnessed heads)"))
        if report.quarantined:
            console.print(Text(f"quarantine: {len(report.quarantined)} files moved aside for "
                               "a person to look at (dockctl status lists why)"))
        for line in report.failures():
            console.print(Text(f"FAIL {line}"))
    if not report.ok:
        failures = report.failures()
        raise VerifyFailed(f"verify found {len(failures)} problems: " + "; ".join(failures))
