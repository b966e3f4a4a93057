"""Hand recordings over: decrypt, prove the plaintext hash, write files that are never
overwritten (0600) plus a manifest with each recording's custody trail, and audit it.

Never prints; `dockctl export` renders the result. Streams: memory does not grow with size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockd.anchors import Anchor
from dockd.catalog import Catalog, EventKind, RecordingRow
from dockd.crypto.keys import X25519Identity
from dockd.crypto.stream import AgeReader
from dockd.custody import prove
from dockd.errors import CryptoError, NoIdentityMatched, StorageError, VerifyFailed
from dockd.store import fsync_dir, sanitise
from dockd.verify import (
    HashingReader,
    chain_json,
    event_json,
    iter_events,
    resolve_store_path,
)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "dockd-export/1"


@dataclass(frozen=True)
class ExportedFile:
    recording: RecordingRow
    path: Path
    plaintext_sha256: str
    size: int
    #: the stored (encrypted) file's SHA-256 as read while exporting it
    stored_sha256: str = ""


@dataclass(frozen=True)
class ExportResult:
    files: list[ExportedFile]
    manifest: Path


def export_name(rec: RecordingRow) -> str:
    """Camera names are device bytes: sanitised, and prefixed so two cameras never collide."""
    return f"{rec.id}_{sanitise(rec.camera_serial, max_len=64)}_{sanitise(rec.camera_name)}"


def _create_excl(path: Path) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise StorageError(f"{path} already exists: export never overwrites a file") from None
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc.strerror}") from exc


def _decrypt_into(rec: RecordingRow, src_path: Path, identities: Sequence[X25519Identity],
                  fd: int, dest: Path, identity_source: str) -> tuple[str, int, str]:
    """Decrypt the stored file into fd (dest, just created); return (plaintext sha256, size,
    stored file sha256 as read in this same pass)."""
    label = f"recording {rec.id} ({rec.camera_name})"
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, src_path.open("rb") as raw:
            src = HashingReader(raw)
            try:
                for piece in AgeReader(src, identities):  # type: ignore[arg-type]
                    out.write(piece)
                    digest.update(piece)
                    size += len(piece)
            except NoIdentityMatched:
                raise NoIdentityMatched(
                    f"{label}: {identity_source} cannot decrypt {src_path} (wrong identity?)"
                ) from None
            except CryptoError as exc:
                raise type(exc)(f"{label}: {src_path} does not decrypt: {exc}") from exc
            src.drain()
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise StorageError(f"{label}: cannot export {src_path} to {dest}: {exc}") from exc
    return digest.hexdigest(), size, src.digest.hexdigest()


def _check(rec: RecordingRow, facts: Mapping[str, Any], plain: str, size: int,
           stored: str) -> None:
    label = f"recording {rec.id} ({rec.camera_name})"
    if stored != facts.get("stored_sha256"):
        raise VerifyFailed(f"{label}: the stored file changed while it was exported (SHA-256 "
                           f"{stored}, the custody chain records {facts.get('stored_sha256')})"
                           "; nothing exported")
    want = facts.get("camera_sha256") or facts.get("plaintext_sha256")
    if plain != want or size != facts.get("size"):
        raise VerifyFailed(
            f"{label}: decrypted {size} bytes with SHA-256 {plain}; the chain records "
            f"{facts.get('size')} bytes, SHA-256 {want}; nothing exported"
        )


def recording_json(rec: RecordingRow) -> dict[str, Any]:
    return {
        "id": rec.id, "camera_serial": rec.camera_serial, "camera_name": rec.camera_name,
        "size": rec.size, "started": rec.started.isoformat(), "duration_s": rec.duration_s,
        "prerecord_s": rec.prerecord_s, "status": str(rec.status),
        "camera_sha256": rec.camera_sha256, "plaintext_sha256": rec.plaintext_sha256,
        "stored_sha256": rec.stored_sha256, "stored_size": rec.stored_size,
        "store_path": rec.store_path,
    }


@dataclass(frozen=True)
class _Checked:
    """A recording whose row, chain and stored file agree, ready to be decrypted; `path`
    None: its copy is read from the vault (the local one is gone or on another host)."""

    rec: RecordingRow
    facts: dict[str, Any]
    path: Path | None


def check_before_export(catalog: Catalog, recs: Sequence[RecordingRow],
                        anchors: Sequence[Anchor], *, vault: Any = None) -> list[_Checked]:
    """Everything export trusts, checked before a byte is written: the whole audit chain
    (with the anchors), each row against its custody chain, each stored file's size and
    SHA-256 against the chain's. VerifyFailed (exit 7) names every disagreement. A copy no
    longer here (retention, another dock host) is read from the vault when one is given:
    its bytes are hashed against the chain's as they arrive."""
    problems = [f"audit chain: {p.message}" for p in
                catalog.verify_chain(anchors=[(a.seq, a.hash) for a in anchors])]
    checked: list[_Checked] = []
    for rec in recs:
        label = f"recording {rec.id} ({rec.camera_serial}/{rec.camera_name})"
        custody = catalog.custody(rec.id)
        differ = custody.problems or custody.mismatch(rec)
        if differ:
            problems += [f"{label}: {d}" for d in differ]
            continue
        facts = custody.facts or {}
        if facts.get("store_path") is None:
            raise StorageError(f"{label} is {rec.status}: there is no stored file to export")
        here = not facts.get("local_deleted_at") and facts.get("stored_on") in (
            None, catalog.host)
        if not here:
            if not facts.get("vault_version") or facts.get("vault_deleted_at"):
                raise StorageError(f"{label}: no copy to export on this host (deleted by "
                                   "retention, or stored on another host) and none in the vault")
            if vault is None:
                raise StorageError(f"{label}: its copy is in the vault only: configure "
                                   "[vault] to export it")
            checked.append(_Checked(rec, facts, None))
            continue
        path = resolve_store_path(str(facts["store_path"]))
        proof = prove(path, size=facts.get("stored_size"), sha256=facts.get("stored_sha256"))
        if not proof.ok:
            problems.append(f"{label}: {proof.reason}")
            continue
        checked.append(_Checked(rec, facts, path))
    if problems:
        raise VerifyFailed(f"export refused, nothing written: {len(problems)} problems: "
                           + "; ".join(problems))
    return checked


def export_recordings(catalog: Catalog, ids: Sequence[int],
                      identities: Sequence[X25519Identity], out_dir: Path, *,
                      identity_source: str = "the identity",
                      anchors: Sequence[Anchor] = (), vault: Any = None) -> ExportResult:
    """Export the recordings `ids` into out_dir, after `check_before_export`. All or nothing:
    on any failure the files this call wrote are removed again and the error (typed)
    propagates."""
    recs = [catalog.recording(i) for i in dict.fromkeys(ids)]  # unknown id: CatalogError
    # whether there is a stored file is the chain's to say, not the row's (a row made to
    # look never stored is a tampered row, exit 7)
    checked = check_before_export(catalog, recs, anchors, vault=vault)
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StorageError(f"cannot create {out_dir}: {exc.strerror}") from exc
    manifest = out_dir / MANIFEST_NAME
    targets = [out_dir / export_name(c.rec) for c in checked]
    for path in [*targets, manifest]:  # fail before any work, not after hours of decrypting
        if path.exists() or path.is_symlink():
            raise StorageError(f"{path} already exists: export never overwrites a file")
    written: list[Path] = []
    files: list[ExportedFile] = []
    try:
        for item, dest in zip(checked, targets, strict=True):
            source = item.path
            if source is None:  # from the vault: fetched beside the export, then decrypted
                source = dest.with_name(f".{dest.name}.vault")
                written.append(source)
                _fetch(vault, item, source)
            fd = _create_excl(dest)
            written.append(dest)  # only what this call created is ever removed again
            plain, size, stored = _decrypt_into(item.rec, source, identities, fd, dest,
                                                identity_source)
            _check(item.rec, item.facts, plain, size, stored)
            files.append(ExportedFile(item.rec, dest, plain, size, stored))
            if item.path is None:
                source.unlink()
                written.remove(source)
        _write_manifest(manifest, catalog, files, written)
        try:
            fsync_dir(out_dir)
        except OSError as exc:
            raise StorageError(f"cannot sync {out_dir}: {exc.strerror}") from exc
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return ExportResult(files, manifest)


def _fetch(vault: Any, item: _Checked, dest: Path) -> None:
    """Download a recording's vault object into `dest` (0600, never overwriting), hashing
    it on the way: bytes that are not the chain's stored SHA-256 are refused (exit 7)."""
    label = f"recording {item.rec.id} ({item.rec.camera_name})"
    digest = hashlib.sha256()
    fd = _create_excl(dest)
    with os.fdopen(fd, "wb") as out, vault.open_download(
            str(item.facts["vault_key"]), str(item.facts["vault_version"])) as body:
        for piece in body.pieces():
            digest.update(piece)
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != item.facts.get("stored_sha256"):
        raise VerifyFailed(f"{label}: the vault's copy has SHA-256 {digest.hexdigest()}, the "
                           f"chain records {item.facts.get('stored_sha256')}; nothing exported")


def _write_manifest(path: Path, catalog: Catalog, files: list[ExportedFile],
                    written: list[Path]) -> None:
    now = datetime.now(UTC)
    fd = _create_excl(path)
    written.append(path)
    for f in files:  # first the audit events, so the manifest's trail includes them
        catalog.record_event(
            EventKind.EXPORTED, camera_serial=f.recording.camera_serial,
            recording_id=f.recording.id,
            details={"file": str(f.path), "plaintext_sha256": f.plaintext_sha256,
                     "size": f.size, "stored_sha256": f.stored_sha256},
        )
    doc = {
        "format": MANIFEST_FORMAT,
        "exported_at": now.isoformat(),
        "host": socket.gethostname(),
        "audit_chain": chain_json(catalog.verify_chain()),
        "recordings": [
            {**recording_json(f.recording), "file": f.path.name,
             "exported_sha256": f.plaintext_sha256,
             "stored_file_sha256": f.stored_sha256,
             "custody": [event_json(e) for e in iter_events(catalog, recording=f.recording.id)]}
            for f in files
        ],
    }
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(doc, out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
