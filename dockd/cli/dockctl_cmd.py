"""`dockctl`: the operators' and technicians' tool (keys, recordings, verify, export, audit).

Each command lives in its own module, imported only when that command runs: a cold
`dockctl status` pays for the catalog and `status` alone, not for export's decryption, verify's
hashing pool or the health report's charts (issue 15 counts every cold command's seconds).
"""

from __future__ import annotations

import importlib

import click

#: name -> (module, attribute, short help). The short help is what `dockctl --help` lists
#: without importing every command; tests/test_dockctl_lazy.py checks it is each command's own.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "audit": ("dockd.cli.audit_cmd", "audit",
              "Show the custody trail and check the whole audit chain..."),
    "cameras": ("dockd.cli.health_cmd", "cameras",
                "One line per camera: battery, shift endurance, clock,..."),
    "category": ("dockd.cli.retention_cmd", "category",
                 "File recordings ID... under a retention CATEGORY from..."),
    "export": ("dockd.cli.export_cmd", "export",
               "Decrypt recordings ID... into DIR, check their SHA-256,..."),
    "health": ("dockd.cli.health_cmd", "health",
               "The fleet's findings, worst first: severity, subject, what..."),
    "hold": ("dockd.cli.retention_cmd", "hold",
             "Put recordings ID... on legal hold: kept whatever their..."),
    "keygen": ("dockd.cli.keys_cmd", "keygen",
               "Create an age identity file; print its recipient (age1…)..."),
    "ports": ("dockd.cli.health_cmd", "ports",
              "One line per dock port: transfers, failures, retries,..."),
    "recordings": ("dockd.cli.recordings_cmd", "recordings",
                   "List recordings: id, camera, name, size, started, status,..."),
    "release": ("dockd.cli.retention_cmd", "release",
                "Release recordings ID... from legal hold: their retention..."),
    "report": ("dockd.cli.health_cmd", "report",
               "Write a self-contained HTML report (no network needed to..."),
    "retention": ("dockd.cli.retention_cmd", "retention",
                  "What is kept, why, and when it goes; with --sweep, delete..."),
    "status": ("dockd.cli.status_cmd", "status",
               "Docked cameras, transfers in flight with progress, recent..."),
    "udev-rules": ("dockd.cli.udev_cmd", "udev_rules_command",
                   "udev rules granting the dockd group access to matched..."),
    "verify": ("dockd.cli.verify_cmd", "verify",
               "Check the audit chain (against the store's anchor file and..."),
}


def load_command(name: str) -> click.Command:
    module, attribute, _ = COMMANDS[name]
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    return command


class LazyCommands(click.Group):
    """A group whose commands are imported on first use (click's documented lazy-group way)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return load_command(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dockd")
def main() -> None:
    """dockctl — look after a dockd evidence store: keys, recordings, status, verify, export,
    audit, udev rules; the fleet's health: health, cameras, ports, report; and what keeps
    evidence: hold, release, category, retention."""
