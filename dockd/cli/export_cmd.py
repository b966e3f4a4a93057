"""`dockctl export`: decrypt recordings for hand-over, with a manifest and custody trail."""

from __future__ import annotations

from pathlib import Path

import click

from dockd.anchors import read_anchors
from dockd.cli.common import reports_errors
from dockd.cli.dockctl_common import config_option, load, open_catalog, vault_client
from dockd.crypto.keys import load_identities
from dockd.errors import VerifyFailed
from dockd.export import export_recordings


@click.command()
@config_option
@click.argument("ids", nargs=-1, required=True, type=int, metavar="ID...")
@click.option("--identity", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="age identity file that can decrypt the store.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              required=True, help="Directory to write into (created 0700 if missing).")
@reports_errors
def export(config_path: Path, ids: tuple[int, ...], identity: Path, out_dir: Path) -> None:
    """Decrypt recordings ID... into DIR, check their SHA-256, write manifest.json.

    First checks the audit chain (against the store's anchor file), each row against its
    custody chain and each stored file against the chain's hashes: any disagreement exits 7
    and writes nothing. Never overwrites; on any failure removes what it wrote. Records an
    `exported` event. A recording whose local copy retention deleted, or that another dock
    host stored, is read from the vault (`[vault]`) and checked against the chain there.
    """
    config = load(config_path)
    identities = load_identities(identity)
    anchors, unreadable = read_anchors(config.storage.path)
    if unreadable:
        raise VerifyFailed("the store's anchor file cannot be read: " + "; ".join(unreadable))
    with open_catalog(config) as catalog:
        result = export_recordings(catalog, ids, identities, out_dir,
                                   identity_source=str(identity), anchors=anchors,
                                   vault=vault_client(config))
    for f in result.files:
        click.echo(f"{f.path}  {f.size} bytes  sha256 {f.plaintext_sha256}")
    click.echo(f"{result.manifest}")
