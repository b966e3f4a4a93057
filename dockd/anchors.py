"""Witnesses of the audit chain's head, kept where the catalog alone cannot rewrite them.

The chain has no secret: whoever can write the catalog can cut its tail and move the head
back, or recompute every hash. Like Certificate Transparency's signed tree heads kept by
others, the head (sequence number and hash) is written down outside the catalog:

- in every `dock_session` log line (the journal: another file, another owner);
- in `<store root>/.audit-anchors`, one line `<seq> <hash> <UTC time>` appended (O_APPEND,
  fsynced) at the end of each dock session and when the daemon stops;
- on paper: `dockctl verify --anchor SEQ:HASH` checks a head a person wrote down.

`dockctl verify` checks the chain against every anchor it can read. What a witness proves:
the events up to its sequence number are still the ones that were there when it was written.
What it does not: anything after the last anchor, or a rewrite by someone who can also
rewrite the witness (the anchor file lives on the dock's disk; the journal and paper do not).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dockd.store import ensure_dir, fsync_dir, storage_error

ANCHOR_FILE = ".audit-anchors"
_LINE = re.compile(r"(\d{1,19}) ([0-9a-f]{64}) (\S+)")
#: a damaged or hostile anchor file is read no further than this
MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    #: where it came from, for messages ("<file>:<line>", "--anchor")
    source: str


def anchor_path(root: Path) -> Path:
    return root / ANCHOR_FILE


def parse_anchor(text: str, source: str = "--anchor") -> Anchor:
    """`SEQ:HASH` as a person writes it down (also `SEQ HASH`)."""
    seq, sep, digest = text.strip().replace(" ", ":", 1).partition(":")
    digest = digest.strip().lower()
    if not sep or not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"{text!r}: an anchor is SEQ:HASH (a number, 64 hex digits)")
    return Anchor(int(seq), digest, source)


def append_anchor(root: Path, seq: int, digest: str, at: datetime | None = None) -> None:
    """Append the head to the store's anchor file and fsync it (a new file: its directory
    too). One write of one short line with O_APPEND: sessions ending together never
    interleave their lines."""
    path = anchor_path(root)
    line = f"{seq} {digest} {(at or datetime.now(UTC)).astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}\n"
    try:
        ensure_dir(root)
        created = not os.path.lexists(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            os.write(fd, line.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(root)
    except OSError as exc:
        raise storage_error(exc, path, "appending an audit anchor") from exc


def read_anchors(root: Path) -> tuple[list[Anchor], list[str]]:
    """The anchors in the store's file, and a line for each one that could not be read.
    A last line without its newline (a write cut by a crash) is not an anchor."""
    path = anchor_path(root)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{path}: cannot read: {exc.strerror}"]
    problems = []
    if len(data) > MAX_BYTES:
        problems.append(f"{path}: larger than {MAX_BYTES} bytes ({st.st_size}); read the "
                        "first part only")
        data = data[:MAX_BYTES]
    anchors: list[Anchor] = []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines[:-1], start=1):  # the last piece has no newline
        match = _LINE.fullmatch(raw.decode("ascii", "replace"))
        if match is None:
            problems.append(f"{path}:{number}: not an anchor line")
            continue
        anchors.append(Anchor(int(match[1]), match[2], f"{path}:{number}"))
    return anchors, problems
