"""`dockctl keygen`: make the age identity whose recipient goes into the dock's config."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from dockd.cli.common import reports_errors
from dockd.crypto.keys import generate_identity
from dockd.errors import StorageError


def write_identity_file(path: Path) -> str:
    """Create path (0600, O_EXCL: never overwrite) holding a new identity; return its recipient."""
    identity, recipient = generate_identity()
    text = (f"# created: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
            f"# public key: {recipient}\n{identity}\n")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise StorageError(f"{path} already exists: keygen never overwrites a key") from None
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc.strerror}") from exc
    return recipient


@click.command()
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="New identity file to create (refuses an existing file).")
@reports_errors
def keygen(out: Path) -> None:
    """Create an age identity file; print its recipient (age1…) for [encryption] recipients."""
    recipient = write_identity_file(out)
    click.echo(recipient)
    click.echo(
        f"dockctl: wrote the secret key to {out} (mode 0600). Put the recipient line above into "
        "the dock's [encryption] recipients; keep the key file OFF the dock PC (offline, "
        "backed up): whoever holds it can decrypt every recording.",
        err=True,
    )
