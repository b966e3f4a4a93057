"""dockctl imports a command's module only when that command runs (issue 15: every cold
command's seconds count), and what `dockctl --help` lists without importing is each command's
own short help."""

from __future__ import annotations

import subprocess
import sys

import click

from dockd.cli.dockctl_cmd import COMMANDS, load_command, main


def test_the_help_table_is_each_commands_own_short_help() -> None:
    for name, (_module, _attribute, short) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert command.get_short_help_str(limit=len(short)) == short, name


def test_every_command_resolves_and_unknown_ones_do_not() -> None:
    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    assert all(main.get_command(ctx, name) is not None for name in COMMANDS)
    assert main.get_command(ctx, "no-such-command") is None


def test_a_cold_status_imports_neither_export_verify_nor_health() -> None:
    probe = ("import sys; from dockd.cli.dockctl_cmd import main, load_command; "
             "load_command('status'); "
             "print(sorted(m for m in ('dockd.export', 'dockd.verify', 'dockd.health.report', "
             "'dockd.cli.health_cmd', 'dockd.cli.export_cmd') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
