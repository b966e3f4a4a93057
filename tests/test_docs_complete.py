"""The documentation a new user reads first: every dockctl command has its section in
docs/dockctl.md, no document sends the reader to a path outside the repository, and the two
commands on the README's first screen exist (issue 13)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from dockd.cli.dockctl_cmd import main as dockctl

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("drivers/*/README.md"),
               *REPO.glob("drivers/*/*.md"), *REPO.glob("sim/*.md")])


def test_docs_dockctl_has_a_section_for_every_command() -> None:
    headings = [line[3:] for line in (REPO / "docs" / "dockctl.md").read_text().splitlines()
                if line.startswith("## ")]
    named = {word for h in headings for word in re.findall(r"[a-z][a-z-]+", h)}
    commands = set(dockctl.list_commands(click.Context(dockctl)))  # type: ignore[attr-defined]
    assert {"status", "udev-rules", "health", "report"} <= commands
    assert commands - named == set(), headings


def test_no_document_points_outside_the_repository() -> None:
    outside = re.compile(r"(/work/|\.\./shared|/home/\w|/root/|~/)")
    found = [f"{doc.relative_to(REPO)}:{n}: {line.strip()}" for doc in DOCS
             for n, line in enumerate(doc.read_text().splitlines(), 1) if outside.search(line)]
    assert found == []


def test_the_readmes_first_screen_commands_exist() -> None:
    readme = (REPO / "README.md").read_text()
    first = readme[:readme.index("---")]
    commands = re.findall(r"^(scripts/\w+)\s", first, flags=re.MULTILINE)
    assert commands == ["scripts/demo", "scripts/test"]
    for command in commands:
        assert os.access(REPO / command, os.X_OK), command
