"""Prove the evidence store at any time: re-hash every stored file, optionally decrypt it,
compare with the catalog, look for files nobody catalogued, and check the audit chain.

Never prints; `dockctl verify` renders the report. Reads every file in bounded pieces.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from stat import S_ISLNK, S_ISREG
from typing import Any, BinaryIO

from dockd.anchors import ANCHOR_FILE, Anchor, read_anchors
from dockd.catalog import AuditRecord, Catalog, ChainProblem, EventKind, RecordingRow
from dockd.catalog.custody import Custody, facts_of
from dockd.crypto.keys import X25519Identity
from dockd.crypto.stream import AgeReader
from dockd.errors import CryptoError, NoIdentityMatched
from dockd.store import QUARANTINE_DIR, SIDECAR_SUFFIX, STORE_MARKER, list_partials
from dockd.vault.resume import RESUME_DIR_NAME

PIECE = 1 << 20
EVENT_PAGE = 5000
#: findings (and ok ids, tombstones) a report keeps one by one; beyond it, counts only:
#: a store whose files are all gone gives a million findings, not a million lines in memory
KEEP = 1000
#: verified_later events appended per transaction
VOUCH_BATCH = 2000
#: files of the store walk asked of the catalog at once (`unknown_files`)
WALK_BATCH = 2000


@dataclass(frozen=True)
class Selection:
    """Which stored files a check reads (restic's `check --read-data-subset` is the model):
    all of them; a `percent` sample, chosen by a keyed hash of each recording's id (the same
    `seed` chooses the same recordings again); and/or those catalogued since `since`."""

    percent: float | None = None
    seed: int = 0
    since: datetime | None = None

    @property
    def partial(self) -> bool:
        return self.percent is not None or self.since is not None

    def picks(self, rec: RecordingRow) -> bool:
        if self.since is not None and rec.created_at < self.since:
            return False
        if self.percent is None:
            return True
        digest = hashlib.blake2b(rec.id.to_bytes(8, "big"), digest_size=8,
                                 key=self.seed.to_bytes(8, "big")).digest()
        return int.from_bytes(digest, "big") < self.percent / 100 * 2**64

    def to_json(self) -> dict[str, Any]:
        return {"scope": "partial" if self.partial else "all", "sample_percent": self.percent,
                "seed": self.seed if self.percent is not None else None,
                "since": self.since.isoformat() if self.since is not None else None}


@dataclass(frozen=True)
class Progress:
    """How far a check is: files read, their bytes, seconds since it started."""

    files: int
    bytes: int
    seconds: float


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one file."""

    #: missing | unreadable | stored_hash | stored_size | decrypt | wrong_identity
    #: | plaintext_hash | size | not_stored | unknown_file | key_material | row_differs
    #: | no_custody | row_missing | chain_event | anchor_file | vault_missing | vault_checksum
    #: | vault_lock | vault_hold | vault_unreachable
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
    #: local copies retention deleted (tombstones: not a failure)
    retired: list[str] = field(default_factory=list)
    #: recordings whose local copy another dock host holds (checked there, or with --vault)
    elsewhere: int = 0
    #: vaulted objects checked against the vault (--vault)
    vault_checked: int = 0
    #: which files were read (all, or a part: --sample / --since)
    selection: Selection = field(default_factory=Selection)
    #: recordings whose file this (partial) check did not read
    skipped: int = 0
    #: recordings that checked out (`ok_ids` keeps the first KEEP of them)
    ok_count: int = 0
    #: findings beyond the first KEEP, counted by problem
    omitted: Counter[str] = field(default_factory=Counter)
    #: bytes of stored files read
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings and not self.chain and not self.omitted

    def add(self, found: Finding) -> None:
        if len(self.findings) < KEEP:
            self.findings.append(found)
        else:
            self.omitted[found.problem] += 1

    def by_problem(self) -> Counter[str]:
        """How many findings of each problem, kept or not."""
        return Counter(f.problem for f in self.findings) + self.omitted

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
            "deleted_by_retention": self.retired,
            "stored_on_other_hosts": self.elsewhere,
            "vault_checked": self.vault_checked,
            "selection": self.selection.to_json(),
            "skipped": self.skipped,
            "ok_count": self.ok_count,
            "findings_by_problem": dict(self.by_problem()),
            "findings_omitted": sum(self.omitted.values()),
            "bytes_read": self.bytes_read,
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
        buf = memoryview(bytearray(PIECE))  # one buffer, no allocation per piece
        while self.readinto(buf):
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
    unread = findings_without_reading(rec, want)
    if unread is not None:
        return unread
    stored_sha = want["stored_sha256"]
    path = resolve_store_path(str(want["store_path"]))
    where = f"recording {rec.id} ({rec.camera_serial}/{rec.camera_name}) {path}"
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


def findings_without_reading(rec: RecordingRow, want: Mapping[str, Any]
                             ) -> list[Finding] | None:
    """`check_recording`'s findings when they need no read of the file (no stored file or
    hash recorded; no regular file at its path); None when the file must be read. A store
    whose files are gone is judged without a thread hand-off per recording."""
    store_path, stored_sha = want.get("store_path"), want.get("stored_sha256")
    label = f"recording {rec.id} ({rec.camera_serial}/{rec.camera_name})"
    if store_path is None or stored_sha is None:
        return [Finding("not_stored", "", rec.id, f"{label}: status {want.get('status')} but "
                        "no stored file or stored hash is recorded")]
    # as text, not a Path: pathlib interns every part of every path it parses
    text = str(store_path)
    path = text if _as_walked(text) else str(resolve_store_path(text))
    if not S_ISREG(_mode(path, follow=True)) or S_ISLNK(_mode(path, follow=False)):
        return [Finding("missing", path, rec.id, f"{label} {path}: recorded file is missing")]
    return None


def _mode(path: str, *, follow: bool) -> int:
    """The file's st_mode, 0 when there is none: `Path.is_file()`/`is_symlink()`'s answer
    (the errors they take for "no such file" are; any other is raised, as they raise it)."""
    try:
        return os.stat(path, follow_symlinks=follow).st_mode  # noqa: PTH116 (no Path: above)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return 0
        raise
    except ValueError:  # a NUL in the path
        return 0


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


def unknown_files(root: Path, named: Callable[[list[str]], Collection[str]]
                  ) -> Iterator[Path]:
    """Files under root that no recording names (in-progress partials, the quarantine, the
    anchor file and the store's marker excepted: they are reported on their own), in walk
    order. `named(paths)` says which of a batch of found files (as text) a recording names:
    the walk asks the catalog WALK_BATCH files at a time, so memory is one directory's
    listing and one batch whatever the size of the store or the catalog. Paths are text
    until one is reported (pathlib interns every part of every path it parses)."""
    root = root.absolute()
    if not root.is_dir():
        return
    top = str(root)
    partials = {str(p) for p in list_partials(root)}
    batch: list[tuple[str, bool]] = []  # (path, whether a recording might name it)

    def settled() -> Iterator[Path]:
        asked = [path for path, ask in batch if ask]
        known = named(asked) if asked else ()
        yield from (Path(path) for path, ask in batch if not ask or path not in known)
        batch.clear()

    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        if dirpath == top:
            # the vault service's upload states and locks are not evidence (no key either)
            dirnames[:] = [d for d in dirnames if d not in (QUARANTINE_DIR, RESUME_DIR_NAME)]
        dirnames.sort()
        for name in sorted(filenames):
            if dirpath == top and name in (ANCHOR_FILE, STORE_MARKER):
                continue
            path = os.path.join(dirpath, name)  # noqa: PTH118 (text: see above)
            if path not in partials:
                batch.append((path, True))
                if len(batch) >= WALK_BATCH:
                    yield from settled()
        # a symlinked directory is not walked into, but it is not ours either
        batch.extend((str(Path(dirpath, name)), False) for name in dirnames
                     if Path(dirpath, name).is_symlink())
    yield from settled()


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
                 anchors: Sequence[Anchor] = (), *,
                 selection: Selection | None = None, jobs: int | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 progress_every_s: float = 2.0) -> VerifyReport:
    """Check the chain (with every anchor: the store's anchor file and those given), every
    row against the chain, and every file the chain says is stored (or the `selection` of
    them) against the chain's hashes; on a whole check, find files nobody recorded and key
    material left behind. Appends `verified_later` for each recording that checks out and
    one `verify_run` saying what this check read and found — unless the chain itself failed:
    nothing is appended to a chain this check has just rejected.

    Streams: rows and events come a page at a time, files are re-hashed by `jobs` threads
    (default: every core; hashlib and file reads release the GIL) with a bounded number in
    flight, and the report keeps the first KEEP findings, counting the rest."""
    selection = selection or Selection()
    report = VerifyReport(decrypted=identities is not None, selection=selection)
    began = time.monotonic()
    witnessed, unreadable = read_anchors(root)
    for p in unreadable:
        report.add(Finding("anchor_file", "", None, p))
    everything = [*witnessed, *anchors]
    report.anchors = len(everything)
    report.chain = catalog.verify_chain(anchors=[(a.seq, a.hash) for a in everything])
    broken = {p.seq for p in report.chain if p.seq is not None}
    # only a whole check walks the store for unknown files, asking the catalog of each file
    # it finds (`named`): no set of every path the catalog names. Kept here, as keyed 8-byte
    # digests, are only the paths that query cannot find: a chain's path its row no longer
    # names (a row_differs finding), or a path not written as the walk spells it
    key = secrets.token_bytes(16)
    walk = not selection.partial
    irregular: set[bytes] = set()
    vouched: list[tuple[str | None, int | None, Mapping[str, Any]]] = []
    workers = jobs or os.cpu_count() or 1
    #: (row, doubted, facts, its findings or the thread finding them), in catalog order
    in_flight: deque[tuple[RecordingRow, bool, Mapping[str, Any],
                           list[Finding] | Future[list[Finding]]]] = deque()
    shown = began

    def vouch_pending(force: bool = False) -> None:
        if vouched and (force or len(vouched) >= VOUCH_BATCH):
            catalog.record_events(EventKind.VERIFIED_LATER, vouched)
            vouched.clear()

    def settle(rec: RecordingRow, doubted: bool, facts: Mapping[str, Any],
               found: list[Finding] | Future[list[Finding]]) -> None:
        """Book one recording's findings; `doubted`: its row or custody failed already."""
        nonlocal shown
        if isinstance(found, Future):
            found = found.result()
        if not any(f.problem in ("missing", "unreadable") for f in found):
            report.bytes_read += int(facts.get("stored_size") or 0)
        if found or doubted:
            for f in found:
                report.add(f)
        else:
            report.ok_count += 1
            if len(report.ok_ids) < KEEP:
                report.ok_ids.append(rec.id)
            if not report.chain:  # never append to a chain this check has just rejected
                vouched.append((rec.camera_serial, rec.id, {
                    "stored_sha256": facts.get("stored_sha256"),
                    "plaintext_checked": report.decrypted}))
                vouch_pending()
        now = time.monotonic()
        if progress is not None and now - shown >= progress_every_s:
            shown = now
            progress(Progress(report.checked, report.bytes_read, now - began))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        for rec, custody in catalog.iter_custody():
            doubts = _custody_findings(rec, custody)
            for f in doubts:
                report.add(f)
            if rec is None:
                continue
            rejected = bool(broken) and not broken.isdisjoint(custody.seqs)
            if rejected:  # its own events are what the chain rejects
                report.add(Finding(
                    "chain_event", rec.store_path or "", rec.id,
                    f"recording {rec.id} ({rec.camera_serial}/{rec.camera_name}): its custody "
                    "events are among those the audit chain rejects; nothing about it is "
                    "vouched"))
            facts = custody.facts if custody.facts is not None else facts_of(rec)
            if walk:
                for value in {facts.get("store_path"), rec.store_path} - {None}:
                    if value != rec.store_path or not _as_walked(rec.store_path):
                        irregular.add(_path_key(key, resolve_store_path(str(value))))
            if facts.get("store_path") is None and rec.store_path is None:
                continue  # never stored (pending, failed, refused): nothing on disk to check
            if facts.get("local_deleted_at"):  # a tombstone: gone on purpose, hashes kept
                if len(report.retired) < KEEP:
                    report.retired.append(f"recording {rec.id} ({rec.camera_serial}/"
                                          f"{rec.camera_name}): deleted by retention on "
                                          f"{str(facts['local_deleted_at'])[:10]}")
                continue
            if facts.get("stored_on") not in (None, catalog.host):
                report.elsewhere += 1  # its file is on another dock host (and in the vault)
                continue
            if not selection.picks(rec):
                report.skipped += 1
                continue
            report.checked += 1
            found = findings_without_reading(rec, facts)
            in_flight.append((rec, bool(doubts) or rejected, facts, found if found is not None
                              else pool.submit(check_recording, rec, identities, facts)))
            while len(in_flight) > 4 * workers:
                settle(*in_flight.popleft())
        while in_flight:
            settle(*in_flight.popleft())
    vouch_pending(force=True)
    if walk:
        def named(paths: list[str]) -> set[str]:
            """Which of these found files a recording names."""
            rows = catalog.named_paths([p for p in paths if _utf8(p)])
            return {p for p in paths
                    if p in rows or (irregular and _path_key(key, p) in irregular)}

        for path in unknown_files(root, named):
            report.add(Finding(
                "unknown_file", str(path), None,
                f"{path}: file in the store that no recording names"))
        for path in orphan_key_files(root):
            report.add(Finding(
                "key_material", str(path), None,
                f"{path}: resume state (it holds a file key) without its partial; remove it"))
    report.quarantined = [str(p) for p in quarantined(root)]
    if progress is not None:
        progress(Progress(report.checked, report.bytes_read, time.monotonic() - began))
    if not report.chain:
        catalog.record_event(EventKind.VERIFY_RUN, details={
            **report.selection.to_json(), "checked": report.checked, "ok": report.ok_count,
            "skipped": report.skipped, "decrypted": report.decrypted,
            "problems": dict(sorted(report.by_problem().items())),
            "unknown_files_checked": walk})
    return report


def _as_walked(path: str | None) -> bool:
    """Whether the store walk spells this stored path exactly so (absolute, normal: as
    `resolve_store_path` gives it), so that asking the catalog for the walked path finds it."""
    return path is not None and path.startswith("/") and os.path.normpath(path) == path


def _utf8(text: str) -> bool:
    """A walked name that is not UTF-8 (kept by Python as surrogates) is in no catalog
    column: the catalog's text is UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _path_key(key: bytes, path: str | Path) -> bytes:
    return hashlib.blake2b(os.fsencode(path), digest_size=8, key=key).digest()


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
    """Audit events in order, a page at a time, filtered by camera and/or recording in the
    query (from their indexes: the rest of the chain is never read)."""
    since = 0
    while True:
        page = catalog.events(since_seq=since, limit=EVENT_PAGE, camera=camera,
                              recording=recording)
        yield from page
        if len(page) < EVENT_PAGE:
            return
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


# --- the vault's copies ---------------------------------------------------------------


def verify_vault(catalog: Catalog, report: VerifyReport, client: Any, policy: Any, *,
                 download: bool = False) -> None:
    """Every vaulted recording's object, checked without downloading it: it exists at the
    recorded version, its checksum is the recorded one, its lock lasts at least the
    recording's retention, its legal hold is set when the recording is held. With
    `download`, its bytes are read back and hashed against the chain's stored SHA-256."""
    from dockd.retention import kept_until  # noqa: PLC0415
    from dockd.vault.errors import VaultError  # noqa: PLC0415

    for rec in catalog.kept_recordings():
        if rec.vault_version is None or rec.vault_key is None or rec.vault_deleted_at:
            continue
        label = f"recording {rec.id} ({rec.camera_serial}/{rec.camera_name}) vault object"
        where = f"{rec.vault_key}@{rec.vault_version}"
        report.vault_checked += 1
        try:
            state = client.head(rec.vault_key, rec.vault_version)
            if not state.exists:
                report.findings.append(Finding("vault_missing", where, rec.id,
                                               f"{label} {where}: not in the vault"))
                continue
            if state.checksum != rec.vault_checksum:
                report.findings.append(Finding(
                    "vault_checksum", where, rec.id, f"{label} {where}: checksum "
                    f"{state.checksum}, the catalog recorded {rec.vault_checksum}"))
            until = kept_until(rec, policy)
            # S3 keeps whole seconds: a lock cut to the second is the retention's lock
            if until is not None and (state.retain_until is None
                                      or state.retain_until < until.replace(microsecond=0)):
                report.findings.append(Finding(
                    "vault_lock", where, rec.id, f"{label} {where}: locked until "
                    f"{state.retain_until}, its retention runs until {until}"))
            if rec.legal_hold and not state.legal_hold:
                report.findings.append(Finding(
                    "vault_hold", where, rec.id, f"{label} {where}: the recording is on legal "
                    "hold, the object is not (dockd-vault mirrors it: is it running?)"))
            if download:
                digest = client.sha256_of(rec.vault_key, rec.vault_version)
                if digest != rec.stored_sha256:
                    report.findings.append(Finding(
                        "vault_checksum", where, rec.id, f"{label} {where}: its bytes have "
                        f"SHA-256 {digest}, the chain records {rec.stored_sha256}"))
        except VaultError as exc:
            report.findings.append(Finding("vault_unreachable", where, rec.id,
                                           f"{label} {where}: {exc}"))
