"""The chain binds the evidence: each custody event carries the facts of its recording.

Every event that changes a recording row carries, under `details["recording"]`, the row's
custody facts as they are after the change (serial, camera name, start, size, hashes, stored
size, path, status). The chain alone therefore reproduces every recording's row: `dockctl
verify` replays it and names each column a row no longer agrees on, and the store's files
are compared with the chain's stored hash, never the row's (a row is a cache of the chain).

A `publish_intent` event names the file a transfer is about to publish (path, stored size,
stored SHA-256) before the rename, the way PostgreSQL's WAL record is durable before the page
it describes: a file found at a recording's path is adopted only when it matches an intent.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dockd.catalog.audit import format_at
from dockd.catalog.rows import AuditRecord

#: the columns the chain vouches for, in the order differences are reported
FACT_FIELDS = (
    "camera_serial", "camera_name", "started", "size", "duration_s", "prerecord_s",
    "camera_sha256", "plaintext_sha256", "stored_sha256", "stored_size", "store_path", "status",
    # migration 0006: where the copies are, what keeps them
    "stored_on", "category", "legal_hold", "vault_key", "vault_version", "vault_checksum",
    "vault_hold", "vault_lock_until", "local_deleted_at", "vault_deleted_at",
)
#: what an event written before a fact existed asserts about it: its column's default
FACT_DEFAULTS: dict[str, Any] = {"legal_hold": False, "vault_hold": False}
FACTS_KEY = "recording"
INTENT_KIND = "publish_intent"


def facts_of(rec: object) -> dict[str, Any]:
    """A recording's custody facts as JSON values (times as fixed-width UTC text)."""
    out: dict[str, Any] = {}
    for name in FACT_FIELDS:
        value = getattr(rec, name)
        if isinstance(value, datetime):
            value = format_at(value)
        elif isinstance(value, enum.Enum):
            value = value.value
        out[name] = value
    return out


def differences(row: Mapping[str, Any], chain: Mapping[str, Any]) -> list[str]:
    """Each fact on which a row (as `facts_of`) and the chain disagree, for a person."""
    def said(name: str) -> Any:
        return chain.get(name, FACT_DEFAULTS.get(name))

    return [f"{name}: the row says {row.get(name)!r}, the chain says {said(name)!r}"
            for name in FACT_FIELDS if row.get(name) != said(name)]


@dataclass(frozen=True)
class Intent:
    """A file a transfer said it would publish, as committed before the rename."""

    seq: int
    path: str
    stored_size: int
    stored_sha256: str
    plaintext_sha256: str


@dataclass
class Custody:
    """What the chain says of one recording."""

    recording_id: int
    #: the facts of the last event that carried them; None when no event did
    facts: dict[str, Any] | None = None
    #: the last publish intent
    intent: Intent | None = None
    #: the sequence numbers of this recording's events, in chain order
    seqs: list[int] = field(default_factory=list)
    #: events of this recording that fail their own hash or their link in the chain (filled
    #: by `Catalog.custody`; `iter_custody` leaves that to the one walk of the whole chain)
    problems: list[str] = field(default_factory=list)
    #: when the chain first named the recording (its dock): retention counts from here,
    #: not from a row's created_at, which no event vouches for
    first_at: datetime | None = None

    @property
    def events(self) -> int:
        return len(self.seqs)

    def add(self, ev: AuditRecord) -> None:
        """Take the next event of this recording (in chain order)."""
        self.seqs.append(ev.seq)
        if self.first_at is None:
            self.first_at = ev.at
        try:
            details = ev.details_dict
        except (ValueError, AssertionError):
            self.problems.append(f"event {ev.seq} ({ev.kind}) has unreadable details")
            return
        facts = details.get(FACTS_KEY)
        if isinstance(facts, dict):
            self.facts = facts
        if ev.kind == INTENT_KIND:
            intent = _intent(ev.seq, details)
            if intent is None:
                self.problems.append(f"event {ev.seq} is a publish intent without its facts")
            else:
                self.intent = intent

    def mismatch(self, row: object) -> list[str]:
        """How the row differs from the chain; [] when the chain reproduces it."""
        if self.facts is None:
            return ["no custody event vouches for this row"]
        return differences(facts_of(row), self.facts)


def _intent(seq: int, details: Mapping[str, Any]) -> Intent | None:
    try:
        return Intent(seq, str(details["path"]), int(details["stored_size"]),
                      str(details["stored_sha256"]), str(details["plaintext_sha256"]))
    except (KeyError, TypeError, ValueError):
        return None


def replay(recording_id: int, events: Iterable[AuditRecord]) -> Custody:
    custody = Custody(recording_id)
    for ev in events:
        custody.add(ev)
    return custody
