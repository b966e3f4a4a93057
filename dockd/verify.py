"""Prove the evidence store at any time: re-hash every stored file, optionally decrypt it,
compare with the catalog, look for files nobody catalogued, and check the audit chain.

Never prints; `dockctl verify` renders the report. Reads every file in bounded pieces.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from dockd.catalog import AuditRecord, Catalog, ChainProblem, EventKind, RecordingRow
from dockd.crypto.keys import X25519Identity
from dockd.crypto.stream import AgeReader
from dockd.errors import CryptoError, NoIdentityMatched
from dockd.store import list_partials

PIECE = 1 << 20
EVENT_PAGE = 1000


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one file."""

    #: missing | unreadable | stored_hash | decrypt | wrong_identity | plaintext_hash | size
    #: | not_stored | unknown_file
    problem: str
    path: str
    recording_id: int | None
    message: str


@dataclass
class VerifyReport:
    decrypted: bool
    checked: int = 0
    ok_ids: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    chain: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and not self.chain

    def failures(self) -> list[str]:
        """Every failure as one line for a person."""
        return [f.message for f in self.findings] + [
            f"audit chain: {p.message}" for p in self.chain
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "decrypted": self.decrypted,
            "checked": self.checked,
            "ok_recordings": self.ok_ids,
            "findings": [f.__dict__ for f in self.findings],
            "chain_ok": not self.chain,
            "chain_problems": [p.__dict__ for p in self.chain],
        }


class _HashingReader:
    """A read-only file wrapper that hashes every byte handed out (one pass for two hashes)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.digest.update(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self._raw.readline(limit)
        self.digest.update(data)
        return data

    def readinto(self, buf: memoryview | bytearray) -> int:
        n: int = self._raw.readinto(buf)  # type: ignore[attr-defined]
        self.digest.update(memoryview(buf)[:n])
        return n

    def drain(self) -> None:
        while self.read(PIECE):
            pass


def resolve_store_path(store_path: str) -> Path:
    """An absolute path (a relative one is as the daemon saw it: from the cwd)."""
    return Path(store_path).absolute()


def check_recording(
    rec: RecordingRow, identities: Sequence[X25519Identity] | None
) -> list[Finding]:
    """Findings for one catalogued stored file ([] = it checks out)."""
    label = f"recording {rec.id} ({rec.camera_serial}/{rec.camera_name})"
    if rec.store_path is None or rec.stored_sha256 is None:
        return [Finding("not_stored", "", rec.id, f"{label}: status {rec.status} but no stored "
                        "file or stored hash is catalogued")]
    path = resolve_store_path(rec.store_path)
    where = f"{label} {path}"
    if not path.is_file():
        return [Finding("missing", str(path), rec.id, f"{where}: catalogued file is missing")]
    findings: list[Finding] = []
    try:
        with path.open("rb") as raw:
            src = _HashingReader(raw)
            if identities is not None:
                findings += _check_plaintext(rec, src, identities, where, str(path))
            src.drain()
            stored = src.digest.hexdigest()
    except OSError as exc:
        return [Finding("unreadable", str(path), rec.id, f"{where}: cannot read: {exc}")]
    if stored != rec.stored_sha256:
        findings.insert(0, Finding(
            "stored_hash", str(path), rec.id,
            f"{where}: stored file SHA-256 is {stored}, catalogue says {rec.stored_sha256}"))
    return findings


def _check_plaintext(rec: RecordingRow, src: _HashingReader,
                     identities: Sequence[X25519Identity], where: str, path: str) -> list[Finding]:
    digest = hashlib.sha256()
    size = 0
    try:
        for piece in AgeReader(src, identities):  # type: ignore[arg-type]
            digest.update(piece)
            size += len(piece)
    except NoIdentityMatched:
        return [Finding("wrong_identity", path, rec.id,
                        f"{where}: the given identity cannot decrypt this file")]
    except CryptoError as exc:
        return [Finding("decrypt", path, rec.id, f"{where}: does not decrypt: {exc}")]
    found: list[Finding] = []
    plain = digest.hexdigest()
    expected = rec.plaintext_sha256 or rec.camera_sha256
    if plain != expected or plain != rec.camera_sha256:
        found.append(Finding("plaintext_hash", path, rec.id,
                             f"{where}: decrypted SHA-256 is {plain}, catalogue says {expected}"))
    if size != rec.size:
        found.append(Finding("size", path, rec.id,
                             f"{where}: decrypted {size} bytes, catalogue says {rec.size}"))
    return found


def unknown_files(root: Path, known: set[Path]) -> Iterator[Path]:
    """Files under root that no catalogued recording names (in-progress partials excepted)."""
    root = root.absolute()
    if not root.is_dir():
        return
    partials = set(list_partials(root))
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path not in known and path not in partials:
                yield path
        # a symlinked directory is not walked into, but it is not ours either
        for name in dirnames:
            if (Path(dirpath) / name).is_symlink():
                yield Path(dirpath) / name


def verify_store(catalog: Catalog, root: Path,
                 identities: Sequence[X25519Identity] | None = None) -> VerifyReport:
    """Check every recording the catalog says is stored; append `verified_later` for each ok."""
    report = VerifyReport(decrypted=identities is not None)
    known: set[Path] = set()
    for rec in catalog.recordings():
        if rec.store_path is None and rec.stored_sha256 is None:
            continue  # never stored (pending, transferring, failed): nothing on disk to check
        report.checked += 1
        if rec.store_path is not None:
            known.add(resolve_store_path(rec.store_path))
        found = check_recording(rec, identities)
        if found:
            report.findings += found
            continue
        report.ok_ids.append(rec.id)
        catalog.record_event(
            EventKind.VERIFIED_LATER, camera_serial=rec.camera_serial, recording_id=rec.id,
            details={"stored_sha256": rec.stored_sha256, "plaintext_checked": report.decrypted})
    for path in unknown_files(root, known):
        report.findings.append(Finding(
            "unknown_file", str(path), None,
            f"{path}: file in the store that the catalogue does not know"))
    report.chain = catalog.verify_chain()
    return report


# --- the custody trail --------------------------------------------------------------------


def iter_events(catalog: Catalog, *, camera: str | None = None,
                recording: int | None = None) -> Iterator[AuditRecord]:
    """Audit events in order, a page at a time, filtered by camera and/or recording."""
    since = 0
    while True:
        page = catalog.events(since_seq=since, limit=EVENT_PAGE)
        if not page:
            return
        for ev in page:
            if camera is not None and ev.camera_serial != camera:
                continue
            if recording is not None and ev.recording_id != recording:
                continue
            yield ev
        since = page[-1].seq


def event_json(ev: AuditRecord) -> dict[str, Any]:
    try:
        details: Any = ev.details_dict
    except (ValueError, AssertionError):  # a damaged row: show it as it is
        details = ev.details
    return {
        "seq": ev.seq, "at": ev.at.isoformat(), "kind": ev.kind, "actor": ev.actor,
        "host": ev.host, "camera_serial": ev.camera_serial, "recording_id": ev.recording_id,
        "details": details, "prev_hash": ev.prev_hash, "hash": ev.hash,
    }


def chain_json(problems: Sequence[ChainProblem]) -> dict[str, Any]:
    return {"ok": not problems, "problems": [p.__dict__ for p in problems]}
