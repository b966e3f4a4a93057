"""Prove the evidence store at any time: re-hash every stored file, optionally decrypt it,
compare with the catalog, look for files nobody catalogued, and check the audit chain.

Never prints; `dockctl verify` renders the report. Reads every file in bounded pieces.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from dockd.anchors import ANCHOR_FILE, Anchor, read_anchors
from dockd.catalog import AuditRecord, Catalog, ChainProblem, EventKind, RecordingRow
from dockd.catalog.custody import Custody, facts_of
from dockd.crypto.keys import X25519Identity
from dockd.crypto.stream import AgeReader
from dockd.errors import CryptoError, NoIdentityMatched
from dockd.store import QUARANTINE_DIR, SIDECAR_SUFFIX, STORE_MARKER, list_partials

PIECE = 1 << 20
EVENT_PAGE = 1000


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one file."""

    #: missing | unreadable | stored_hash | stored_size | decrypt | wrong_identity
    #: | plaintext_hash | size | not_stored | unknown_file | key_material | row_differs
    #: | no_custody | row_missing | chain_event | anchor_file
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
    #: how many witnessed heads the chain was checked against
    anchors: int = 0
    #: what sits in the quarantine (not a failure: moved aside on purpose, for a person)
    quarantined: list[str] = field(default_factory=list)

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
            "anchors_checked": self.anchors,
            "quarantined": self.quarantined,
        }


class HashingReader:
    """A read-only file wrapper that hashes every byte handed out (one pass for two hashes)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self._raw.readline(limit)
        self.digest.update(data)
        self.size += len(data)
        return data

    def readinto(self, buf: memoryview | bytearray) -> int:
        n: int = self._raw.readinto(buf)  # type: ignore[attr-defined]
        self.digest.update(memoryview(buf)[:n])
        self.size += n
        return n

    def drain(self) -> None:
        while self.read(PIECE):
            pass


def resolve_store_path(store_path: str) -> Path:
    """An absolute path (a relative one is as the daemon saw it: from the cwd)."""
    return Path(store_path).absolute()


def check_recording(rec: RecordingRow, identities: Sequence[X25519Identity] | None,
                    facts: Mapping[str, Any] | None = None) -> list[Finding]:
    """Findings for one stored file ([] = it checks out), judged by the chain's `facts`
    (the row's own values when none are given): stored size and SHA-256, and with
    identities the decrypted size and SHA-256 against the camera's."""
    want = dict(facts) if facts is not None else facts_of(rec)
    label = f"recording {rec.id} ({rec.camera_serial}/{rec.camera_name})"
    store_path, stored_sha = want.get("store_path"), want.get("stored_sha256")
    if store_path is None or stored_sha is None:
        return [Finding("not_stored", "", rec.id, f"{label}: status {want.get('status')} but "
                        "no stored file or stored hash is recorded")]
    path = resolve_store_path(str(store_path))
    where = f"{label} {path}"
    if not path.is_file() or path.is_symlink():
        return [Finding("missing", str(path), rec.id, f"{where}: recorded file is missing")]
    findings: list[Finding] = []
    try:
        with path.open("rb") as raw:
            src = HashingReader(raw)
            if identities is not None:
                findings += _check_plaintext(want, rec.id, src, identities, where, str(path))
            src.drain()
            stored = src.digest.hexdigest()
            size = src.size
    except OSError as exc:
        return [Finding("unreadable", str(path), rec.id, f"{where}: cannot read: {exc}")]
    if stored != stored_sha:
        findings.insert(0, Finding(
            "stored_hash", str(path), rec.id,
            f"{where}: stored file SHA-256 is {stored}, the custody chain records {stored_sha}"))
    elif want.get("stored_size") is not None and size != want["stored_size"]:
        findings.insert(0, Finding(
            "stored_size", str(path), rec.id,
            f"{where}: stored file holds {size} bytes, the chain records {want['stored_size']}"))
    return findings


def _check_plaintext(want: Mapping[str, Any], rec_id: int, src: HashingReader,
                     identities: Sequence[X25519Identity], where: str, path: str
                     ) -> list[Finding]:
    digest = hashlib.sha256()
    size = 0
    try:
        for piece in AgeReader(src, identities):  # type: ignore[arg-type]
            digest.update(piece)
            size += len(piece)
    except NoIdentityMatched:
        return [Finding("wrong_identity", path, rec_id,
                        f"{where}: the given identity cannot decrypt this file")]
    except CryptoError as exc:
        return [Finding("decrypt", path, rec_id, f"{where}: does not decrypt: {exc}")]
    found: list[Finding] = []
    plain = digest.hexdigest()
    # the camera's own hash, or (a camera that keeps none) the one taken while reading
    expected = want.get("camera_sha256") or want.get("plaintext_sha256")
    if plain != expected or plain != (want.get("plaintext_sha256") or plain):
        found.append(Finding("plaintext_hash", path, rec_id,
                             f"{where}: decrypted SHA-256 is {plain}, the chain records "
                             f"{expected}"))
    if size != want.get("size"):
        found.append(Finding("size", path, rec_id, f"{where}: decrypted {size} bytes, "
                             f"the camera said {want.get('size')}"))
    return found


def unknown_files(root: Path, known: set[Path]) -> Iterator[Path]:
    """Files under root that no recording names (in-progress partials, the quarantine, the
    anchor file and the store's marker excepted: they are reported on their own)."""
    root = root.absolute()
    if not root.is_dir():
        return
    partials = set(list_partials(root))
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d != QUARANTINE_DIR]
        dirnames.sort()
        for name in sorted(filenames):
            path = here / name
            if here == root and name in (ANCHOR_FILE, STORE_MARKER):
                continue
            if path not in known and path not in partials:
                yield path
        # a symlinked directory is not walked into, but it is not ours either
        for name in dirnames:
            if (here / name).is_symlink():
                yield here / name


def orphan_key_files(root: Path) -> list[Path]:
    """Resume states (each holds a file key) whose partial is gone: key material that must
    not outlive the partial it was for."""
    found = set(list_partials(root.absolute()))
    # a resume state's temp file (a crash between its write and its rename) holds a key too
    return sorted(p for p in found if (p.name.endswith(SIDECAR_SUFFIX)
                                       and p.with_name(p.name[: -len(".resume")]) not in found)
                  or (p.name.endswith(".tmp") and f"{SIDECAR_SUFFIX}." in p.name))


def quarantined(root: Path) -> list[Path]:
    qdir = root.absolute() / QUARANTINE_DIR
    return sorted(p for p in qdir.iterdir()) if qdir.is_dir() else []


def verify_store(catalog: Catalog, root: Path,
                 identities: Sequence[X25519Identity] | None = None,
                 anchors: Sequence[Anchor] = ()) -> VerifyReport:
    """Check the chain (with every anchor: the store's anchor file and those given), every
    row against the chain, and every file the chain says is stored against the chain's
    hashes; find files nobody recorded and key material left behind. Appends
    `verified_later` for each recording that checks out — unless the chain itself failed:
    nothing is appended to a chain this check has just rejected."""
    report = VerifyReport(decrypted=identities is not None)
    witnessed, unreadable = read_anchors(root)
    report.findings += [Finding("anchor_file", "", None, p) for p in unreadable]
    everything = [*witnessed, *anchors]
    report.anchors = len(everything)
    report.chain = catalog.verify_chain(anchors=[(a.seq, a.hash) for a in everything])
    broken = {p.seq for p in report.chain if p.seq is not None}
    known: set[Path] = set()
    vouched: list[tuple[int, str, Any]] = []
    for rec, custody in catalog.iter_custody():
        report.findings += _custody_findings(rec, custody)
        if rec is None:
            continue
        if broken.intersection(custody.seqs):  # its own events are what the chain rejects
            report.findings.append(Finding(
                "chain_event", rec.store_path or "", rec.id,
                f"recording {rec.id} ({rec.camera_serial}/{rec.camera_name}): its custody "
                "events are among those the audit chain rejects; nothing about it is vouched"))
        facts = custody.facts if custody.facts is not None else facts_of(rec)
        for value in {facts.get("store_path"), rec.store_path} - {None}:
            known.add(resolve_store_path(str(value)))
        if facts.get("store_path") is None and rec.store_path is None:
            continue  # never stored (pending, failed, refused): nothing on disk to check
        report.checked += 1
        found = check_recording(rec, identities, facts)
        if (found or custody.mismatch(rec) or custody.problems
                or broken.intersection(custody.seqs)):
            report.findings += found
            continue
        report.ok_ids.append(rec.id)
        vouched.append((rec.id, rec.camera_serial, facts.get("stored_sha256")))
    if not report.chain:  # never append to a chain this check has just rejected
        for rec_id, serial, stored_sha in vouched:
            catalog.record_event(
                EventKind.VERIFIED_LATER, camera_serial=serial, recording_id=rec_id,
                details={"stored_sha256": stored_sha, "plaintext_checked": report.decrypted})
    for path in unknown_files(root, known):
        report.findings.append(Finding(
            "unknown_file", str(path), None,
            f"{path}: file in the store that no recording names"))
    for path in orphan_key_files(root):
        report.findings.append(Finding(
            "key_material", str(path), None,
            f"{path}: resume state (it holds a file key) without its partial; remove it"))
    report.quarantined = [str(p) for p in quarantined(root)]
    return report


def _custody_findings(rec: RecordingRow | None, custody: Custody) -> list[Finding]:
    if rec is None:
        return [Finding("row_missing", "", custody.recording_id,
                        f"recording {custody.recording_id}: the custody chain names it, but "
                        "the catalog has no row for it (deleted?)")]
    label = f"recording {rec.id} ({rec.camera_serial}/{rec.camera_name})"
    found = [Finding("chain_event", "", rec.id, f"{label}: {p}") for p in custody.problems]
    if custody.facts is None:
        found.append(Finding("no_custody", rec.store_path or "", rec.id,
                             f"{label}: no custody event vouches for this row"))
    else:
        found += [Finding("row_differs", rec.store_path or "", rec.id, f"{label}: {d}")
                  for d in custody.mismatch(rec)]
    return found


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
