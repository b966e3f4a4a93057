"""Shared CLI plumbing: typed errors become one line on stderr and their exit code; JSON with
ISO 8601 times; tables that never cut what identifies a row.

Tables (`print_records`) follow three rules:

* **On a terminal** (or wherever `COLUMNS` is set) a rich table as wide as the terminal.
  Identifying columns (a serial, a recording's name, a status) are never wrapped, cut or
  given an ellipsis; when the table does not fit, long free text (a reason, a path) wraps
  first, then columns of lower priority are left out, lowest first, and the table says which.
* **Into a pipe or a file** (not a terminal, `COLUMNS` unset): plain text, a header line and
  one record a line, fields separated by tabs, values whole — for grep, cut and awk.
* Values from devices are `rich.text.Text`, never read as markup.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dockd.errors import DockdError

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn a DockdError into `dockd: <message>` and the error's exit code (borg's habit)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DockdError as exc:
            click.echo(f"{click.get_current_context().find_root().info_name}: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def json_value(value: Any) -> Any:
    """What json.dumps cannot encode itself: times as ISO 8601 (`2026-11-25T14:02:11+00:00`;
    the catalog's times are UTC, a naive one is taken as UTC), paths, enums, dataclasses."""
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)  # a Path, say


def _no_negative_zero(value: Any) -> Any:
    if isinstance(value, float):
        return value + 0.0  # -0.0 → 0.0: "clock_offset_s": -0.0 means nothing to a reader
    if isinstance(value, dict):
        return {k: _no_negative_zero(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_negative_zero(v) for v in value]
    return value


def to_json(value: Any) -> str:
    return json.dumps(_no_negative_zero(value), indent=2, sort_keys=False, default=json_value)


def print_json(value: Any) -> None:
    click.echo(to_json(value))


# --- tables --------------------------------------------------------------------------------

#: what a column holds: "key" identifies the row (a serial, a name, a status): never left
#: out, wrapped or cut; "wrap" is free text (a reason, a path, a message) that may wrap onto
#: more lines, never cut; "short" is a short value kept on one line (a size, a time)
ColumnKind = Literal["key", "wrap", "short"]
KEY: ColumnKind = "key"
WRAP: ColumnKind = "wrap"
SHORT: ColumnKind = "short"


@dataclass(frozen=True)
class Column:
    header: str
    kind: ColumnKind = SHORT
    #: 0: always shown; otherwise left out when the table does not fit, highest first
    drop: int = 0
    justify: Literal["left", "right"] = "left"
    #: a wrapping column gets at least this many characters before columns are dropped
    min_wrap: int = 12


Cell = str | Text


def plain_output() -> bool:
    """A pipe or a file, and nobody asked for a width: plain lines, not a table."""
    return not sys.stdout.isatty() and not os.environ.get("COLUMNS", "").strip().isdigit()


def console() -> Console:
    """Stdout as rich sees it, as wide as the terminal or `COLUMNS`."""
    return Console(highlight=False)


def _plain(cell: Cell) -> str:
    text = cell.plain if isinstance(cell, Text) else cell
    return " ".join(text.split()) if any(c in text for c in "\t\r\n") else text


def _width(cells: Sequence[Cell], header: str) -> int:
    longest = max((len(line) for c in cells for line in _plain(c).splitlines() or [""]),
                  default=0)
    return max(longest, len(header))


def _need(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], shown: Sequence[int]
          ) -> int:
    """Characters a table of these columns needs: identifying and short ones whole, wrapping
    ones at their minimum, one space of padding each side, a rule between and at the edges."""
    total = len(shown) + 1
    for i in shown:
        natural = _width([r[i] for r in rows], columns[i].header)
        total += 2 + (min(natural, columns[i].min_wrap) if columns[i].kind == WRAP else natural)
    return total


def fit_columns(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int
                ) -> list[int]:
    """Indexes of the columns shown at `width`: drop the highest `drop` first until identifying
    and short columns fit whole and each wrapping one has its `min_wrap` characters."""
    shown = list(range(len(columns)))
    # first the columns nobody would miss (empty in every row: no failure reason, say), then
    # the others by priority, highest `drop` first
    empty = [i for i in shown if columns[i].kind != KEY and not any(_plain(r[i]) for r in rows)]
    ranked = sorted((i for i, c in enumerate(columns) if c.drop > 0 and i not in empty),
                    key=lambda i: -columns[i].drop)
    for i in [*empty, *ranked]:
        if _need(columns, rows, shown) <= width:
            break
        shown.remove(i)
    return shown


def print_records(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *,
                  title: str | None = None, out: Console | None = None) -> None:
    """Rows as a table on a terminal, as tab-separated lines into a pipe (module doc)."""
    if plain_output():
        if title:
            click.echo(f"# {title}")
        click.echo("\t".join(c.header for c in columns))
        for row in rows:
            click.echo("\t".join(_plain(c) for c in row))
        return
    out = out or console()
    shown = fit_columns(columns, rows, out.width)
    left_out = [c.header for i, c in enumerate(columns)
                if i not in shown and any(_plain(r[i]) for r in rows)]
    table = Table(title=title)
    # narrower than even the identifying columns: fold them onto more lines (never an
    # ellipsis, never cropped at the edge)
    whole = _need(columns, rows, shown) <= out.width
    for i in shown:
        col = columns[i]
        if col.kind == WRAP or not whole:
            table.add_column(col.header, justify=col.justify, overflow="fold")
        else:  # whole, on one line: wide enough for its longest value
            table.add_column(col.header, justify=col.justify, no_wrap=True, overflow="fold",
                             min_width=_width([r[i] for r in rows], col.header))
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    out.print(table)
    if left_out:
        out.print(Text(f"not shown at {out.width} columns: {', '.join(left_out)} "
                       "(widen the terminal, or use --json)", style="dim"))

