"""`dockctl udev-rules`: print (or write) the udev rules that let the dockd group open cameras."""

from __future__ import annotations

from pathlib import Path

import click

from dockd.cli.common import reports_errors
from dockd.config import load_config
from dockd.devices import DeviceOpener
from dockd.errors import StorageError
from dockd.registry import DriverRegistry
from dockd.udev_rules import generate_rules

# a directory that never holds drop-ins: the drivers' packaged rules alone
_NO_DROPINS = Path("/nonexistent/dockd-no-dropins")


@click.command("udev-rules")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True,
              dir_okay=False), default=None,
              help="Config file (default /etc/dockd/dockd.toml if present); its "
                   "[drivers] dropin_dir adds the administrator's match rules.")
@click.option("--packaged-only", is_flag=True,
              help="Ignore drop-ins: the rules for the drivers as shipped "
                   "(what config/70-dockd.rules holds).")
@click.option("--group", default="dockd", show_default=True,
              help="Group given access (the service's Group=).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the rules to this file (replaced atomically) instead of stdout. "
                   "Then run `udevadm control --reload && udevadm trigger -s usb`.")
@reports_errors
def udev_rules_command(config_path: Path | None, packaged_only: bool, group: str,
                       output: Path | None) -> None:
    """udev rules granting the dockd group access to matched cameras, and nothing else."""
    dropins = _NO_DROPINS if packaged_only else load_config(config_path).drivers.dropin_dir
    opener = DeviceOpener.from_registry(DriverRegistry.discover(), dropins)
    try:
        text = generate_rules(opener.matcher.rules, group=group)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--group") from None
    if output is None:
        click.echo(text, nl=False)
        return
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {output}: {exc.strerror} (run as root to write "
                           "under /etc/udev/rules.d)") from exc
    click.echo(f"wrote {output}", err=True)
