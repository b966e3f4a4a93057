"""`dockctl`: the operators' and technicians' tool (keys, recordings, verify, export, audit).

Each command group lives in its own module; this one only assembles them.
"""

from __future__ import annotations

import click

from dockd.cli.audit_cmd import audit
from dockd.cli.export_cmd import export
from dockd.cli.health_cmd import cameras, health, ports, report
from dockd.cli.keys_cmd import keygen
from dockd.cli.recordings_cmd import recordings
from dockd.cli.retention_cmd import category, hold, release, retention
from dockd.cli.status_cmd import status
from dockd.cli.udev_cmd import udev_rules_command
from dockd.cli.verify_cmd import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dockd")
def main() -> None:
    """dockctl — look after a dockd evidence store: keys, recordings, status, verify, export,
    audit, udev rules; the fleet's health: health, cameras, ports, report; and what keeps
    evidence: hold, release, category, retention."""


for _command in (keygen, recordings, status, verify, export, audit, udev_rules_command,
                 health, cameras, ports, report, hold, release, category, retention):
    main.add_command(_command)
